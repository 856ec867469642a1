"""Where results live: the results folder (``store``) and a cell's working context with its
stage cache (``context``)."""
