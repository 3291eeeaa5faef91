"""vidcap-demo: a Gradio app that captions uploaded videos."""
