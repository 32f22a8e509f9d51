"""ClipProbe: ask CLIP which words of a prompt actually show up in the picture.

The engine (this package, minus ``webui/``) never imports the WebUI or gradio, so it
can be used and tested on its own.  Importing it loads no model and no torch.
"""

__version__ = "0.1.0"
