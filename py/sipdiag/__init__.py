"""sipdiag: diagnose SIP registration, call and DNS problems from packet captures.

The same engine runs in CPython (the CLI) and in Pyodide (the page's worker).
"""

from .capture.pcapfile import CaptureError

__all__ = ["CaptureAnalysis", "CaptureError", "analyze_path"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The engine pulls in every analysis; importing a single module such as
    # sipdiag.protocols.sip should not have to load it.
    if name in ("CaptureAnalysis", "analyze_path"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(name)
