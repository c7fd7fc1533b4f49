"""sipdiag: diagnose SIP registration, call and DNS problems from packet captures.

The same engine runs in CPython (the CLI) and in Pyodide (the page's worker).
"""

from .capture import CaptureError
from .engine import CaptureAnalysis, analyze_path

__all__ = ["CaptureAnalysis", "CaptureError", "analyze_path"]
__version__ = "0.1.0"
