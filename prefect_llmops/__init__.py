"""prefect-llmops' Prefect side: the flows, their tasks, the Blocks, the command line and the demo.

The repository keeps them in its top-level ``flows/``, ``tasks/``, ``blocks/``, ``cli/`` and
``deployments/`` folders; installed, they live here, under the distribution's own name, so
they never shadow (or get shadowed by) a project's own ``tasks`` or ``flows`` package. The
core they run on is the ``llmops`` package, which installs without Prefect.
"""

from llmops import __version__

__all__ = ["__version__"]
