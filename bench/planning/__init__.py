"""From a grid to cells: the dataset bundles a grid may name (``bundles``) and the plan of
each cell with its identity (``plan``)."""
