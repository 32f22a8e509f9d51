"""Stand-ins for the AUTOMATIC1111 WebUI's ``modules`` package (v1.10.1), for tests.

Each module mirrors the public names of the same file in AUTOMATIC1111 v1.10.1 that
ClipProbe (engine glue and gradio tab) uses, with the same signatures, and records calls
where tests need to assert them.  ``tests/webui/conftest.py`` loads a fresh copy of all
of them into ``sys.modules`` for every test (fixture ``webui``).
"""
