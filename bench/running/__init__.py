"""Running planned cells: in this process, in worker processes or on SLURM (``runner``,
``slurm``), checking stage caches (``integrity``) and reading finished cells back
(``finished``)."""
