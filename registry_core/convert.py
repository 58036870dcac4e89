"""Deprecated module path: ``registry_core.convert`` moved to ``registry_core.factory.conversion``.

``convert_from`` and ``convert_to`` are public names of ``registry_core`` itself; this
alias keeps older code working and says where to look.
"""

import warnings

from .factory.conversion import DEFAULT_ATOL, convert_from, convert_to, max_output_difference, source_model

warnings.warn("registry_core.convert is deprecated: use registry_core.convert_from / convert_to",
              DeprecationWarning, stacklevel=2)

__all__ = ["DEFAULT_ATOL", "convert_from", "convert_to", "max_output_difference", "source_model"]
