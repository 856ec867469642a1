"""How a cell runs once planned: one flow per method kind (directions, representation), the
figures they draw, and the flow registry (``base``)."""
