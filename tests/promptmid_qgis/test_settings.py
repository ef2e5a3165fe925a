from promptmid_qgis.dialogs.settings_dialog import SettingsDialog, describe_probe
from promptmid_qgis.dialogs.setup_dialog import setup_steps
from promptmid_qgis.environment import find_engine_python, probe
from promptmid_qgis.settings import PluginSettings


def test_settings_round_trip(qgis_app, tmp_path):
    PluginSettings(model_dir=str(tmp_path), device="cpu", engine="classical", transform="tps").save()
    s = PluginSettings.load()
    assert (s.model_dir, s.device, s.engine, s.transform) == (str(tmp_path), "cpu", "classical", "tps")


def test_check_models_reports_engine_and_missing_weights(qgis_app, qtbot, tmp_path, engine_python):
    d = SettingsDialog(PluginSettings(python=engine_python, model_dir=str(tmp_path)))
    d.check_models()
    qtbot.waitUntil(lambda: d.check_button.isEnabled(), timeout=120_000)
    text = d.report.toPlainText()
    assert "torch:" in text and "Default model: present" in text
    assert "MISSING  stable_diffusion" in text and "hf:facebook/dinov2-base" in text


def test_probe_explains_a_broken_interpreter(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    fake.chmod(0o755)
    info = probe(str(fake))
    assert "error" in info and "boom" in info["error"]
    py, why = find_engine_python(str(fake))
    assert py is not None  # falls back to a working candidate (the test venv)
    assert "error" in describe_probe({"error": "x"}).lower() or "problem" in describe_probe({"error": "x"}).lower()


def test_setup_steps_make_a_venv_with_system_packages_and_pinned_requirements(tmp_path):
    steps = setup_steps(tmp_path / "venv")
    assert steps[0][1][1:] == ["-m", "venv", "--system-site-packages", str(tmp_path / "venv")]
    assert steps[1][1][-2] == "-r" and steps[1][1][-1].endswith(("requirements-engine.txt", "requirements.txt"))


def test_check_models_without_a_model_folder_speaks_of_the_full_engine():
    text = describe_probe({"python": "/p", "packages": {"torch": "2.13.0"}, "cuda": False, "default_present": True, "default_weights": "w"})
    assert "Full PromptMID engine: no model folder set" in text and "Stable Diffusion 1.5" in text


def test_setup_log_follows_and_continue_goes_on(qgis_app, qtbot, tmp_path):
    from qgis.PyQt.QtWidgets import QDialogButtonBox

    from promptmid_qgis.dialogs.setup_dialog import SetupDialog

    d = SetupDialog("none found")
    d.steps = [("Printing", ["/bin/sh", "-c", "for i in $(seq 1 300); do echo line $i; done"])]
    d.progress.setRange(0, 1)
    d.show()
    d.start()
    qtbot.waitUntil(lambda: d.ok, timeout=20_000)
    bar = d.log.verticalScrollBar()
    assert "line 300" in d.log.toPlainText() and bar.maximum() > 0 and bar.value() == bar.maximum()
    ok = d.buttons.button(QDialogButtonBox.Ok)
    assert ok.text() == "Continue" and ok.isEnabled()
    ok.click()
    assert d.result() == 1  # accepted: the plugin goes on with the registration (Close would not)
