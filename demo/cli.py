"""`vidcap-demo` entry point (the Gradio app lands with the demo issue)."""

from __future__ import annotations


def main() -> None:
    print("vidcap-demo will serve the best model on http://127.0.0.1:7860; the app is not built yet.")
