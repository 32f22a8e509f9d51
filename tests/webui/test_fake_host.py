"""The fake host answers exactly host's questions: one method per public function of
``clipprobe_ext.webui.host``, with the same parameters, and nothing else public."""

from __future__ import annotations

import inspect

import fake_host
from conftest import host_functions

from clipprobe_ext.webui import host


def _parameters(fn):
    return [
        (p.name, p.kind, p.default is inspect.Parameter.empty)
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self"
    ]


def test_every_host_function_has_a_fake_with_its_parameters():
    names = host_functions()
    assert len(names) > 30  # the whole surface, not an empty list
    for name in names:
        fake = getattr(fake_host.FakeHost, name, None)
        assert fake is not None, f"FakeHost lacks {name}"
        assert _parameters(fake) == _parameters(getattr(host, name)), name


def test_the_fake_has_no_public_method_host_lacks():
    methods = {
        name
        for name, value in vars(fake_host.FakeHost).items()
        if callable(value) and not name.startswith("_")
    }
    assert methods == set(host_functions())


def test_the_fixture_puts_the_fake_in_place(webui):
    assert host.state() is webui.state and host.opts() is webui.opts
    assert host.queue_lock() is webui.queue_lock
    webui.interrogator = object()
    assert host.interrogator() is webui.interrogator
