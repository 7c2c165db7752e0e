# instances.py - named plugin instances: PLUGIN "NAME" { }, one section and one state namespace each
# SPDX-License-Identifier: BSD-2-Clause
import subprocess

import pdtest
from pdtest import req


def check_config(d, config):
    """policyd -t on CONFIG: (exit status, stderr)."""
    d.write_config(config)
    p = subprocess.run([pdtest.POLICYD, "-t", "-c", d.conf], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stderr


def test_two_instances_of_one_plugin_with_their_own_options():
    d = pdtest.daemon('plugins = { "fake" }\n'
                      'chain "strict" { plugins = { "fake-strict" } }\n'
                      'fake "fake-strict" { action = "REJECT strict" }\n'
                      'fake { action = "DEFER_IF_PERMIT loose" }   # the instance named "fake"\n')
    assert d.ask(req()) == "DEFER_IF_PERMIT loose"
    assert d.ask(req(policy_context="strict")) == "REJECT strict"
    # the deciding instance is named in the decision line and the metrics label
    assert "plugin=fake-strict " in d.wait_log("plugin=fake-strict ")


def test_an_instance_named_without_a_section_gets_the_defaults():
    d = pdtest.daemon('plugins = { "fake", "example" }\n')
    assert d.ask(req()) == "DUNNO"


def test_one_instance_in_two_chains_and_filters_per_instance():
    d = pdtest.daemon('plugins = { "late" }\n'
                      'chain "c" { plugins = { "early", "late" } }\n'
                      'fake "early" { action = "REJECT early" protocol_state = { "MAIL" } }\n'
                      'fake "late" { action = "REJECT late" }\n')
    assert d.ask(req()) == "REJECT late"
    assert d.ask(req(policy_context="c")) == "REJECT late"  # early runs at MAIL only
    assert d.ask(req(policy_context="c", protocol_state="MAIL")) == "REJECT early"


def test_validate_runs_per_instance_section():
    # fake's validate refuses fail and action together, per section, at its line
    d = pdtest.Daemon("")
    rc, err = check_config(d, 'plugins = { "fake", "f2" }\nfake { }\nfake "f2" {\n  fail = true\n  action = "REJECT"\n}\n')
    assert rc != 0
    line = pdtest.line_of(d.conf, 'fake "f2"')
    assert "%s:%d: fail and action exclude each other" % (d.conf, line) in err, err
    rc, err = check_config(d, 'plugins = { "fake", "f2" }\nfake { }\nfake "f2" {\n  fail = true\n}\n')
    assert rc == 0, err
    d.cleanup()


def test_configuration_errors():
    d = pdtest.Daemon("")
    cases = [
        # one name, two plugins
        ('plugins = { "x" }\nfake "x" { }\nexample "x" { }\n',
         'instance "x" is already a fake instance (line <<fake "x">>)', "example \"x\""),
        # twice the same instance
        ('plugins = { "x" }\nfake "x" { }\nfake "x" {  }\n', 'fake "x" is defined twice (first at line <<fake "x" { }>>)',
         'fake "x" {  }'),
        # a section of a plugin no list names
        ('plugins = { "fake" }\nexample { }\n',
         'section example: no plugins list names instance "example", so plugin "example" is not loaded',
         "example {"),
        ('plugins = { "fake" }\nexample "e2" { }\n',
         'section example "e2": no plugins list names instance "e2"', 'example "e2"'),
        # an option the plugin does not have, in a named instance
        ('plugins = { "f2" }\nfake "f2" {\n  colour = 1\n}\n', "colour", "colour"),
        # a name that is no word
        ('plugins = { "a b" }\n', 'plugins: "a b" is not an instance name', "plugins ="),
        # a name no plugin and no section has
        ('plugins = { "greylist-strict" }\n', 'plugin "greylist-strict"', "plugins ="),
    ]
    for config, needle, at in cases:
        rc, err = check_config(d, config)
        assert rc != 0, config
        line = pdtest.line_of(d.conf, at)
        if "<<" in needle:  # <<TEXT>>: the line of TEXT
            ref = needle[needle.index("<<") + 2:needle.index(">>")]
            needle = needle.replace("<<%s>>" % ref, str(pdtest.line_of(d.conf, ref)))
        assert needle in err, (config, err)
        assert "%s:%d:" % (d.conf, line) in err, (config, line, err)
    d.cleanup()


def test_unused_named_section_is_a_warning():
    d = pdtest.daemon('plugins = { "fake" }\nfake "spare" { action = "REJECT" }\n')
    line = pdtest.line_of(d.conf, 'fake "spare"')
    d.wait_log('%s:%d: fake "spare" { }: no plugins list names instance "spare"; it is not used' % (d.conf, line))
    assert d.ask(req()) == "DUNNO"


def test_reload_adds_an_instance():
    d = pdtest.daemon('plugins = { "fake" }\nfake { action = "REJECT one" }\n')
    assert d.ask(req()) == "REJECT one"
    d.write_config('plugins = { "two", "fake" }\nfake { action = "REJECT one" }\nfake "two" { action = "REJECT two" }\n')
    d.reload()
    assert d.ask(req()) == "REJECT two"


if __name__ == "__main__":
    pdtest.run(globals())
