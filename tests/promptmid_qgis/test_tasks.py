import gc
import os
import time
import warnings

from qgis.core import (Qgis, QgsApplication, QgsCoordinateReferenceSystem, QgsGraduatedSymbolRenderer, QgsProject,
                       QgsTask)
from qgis.PyQt.QtWidgets import QPushButton

from promptmid_qgis.engine_check import CHECKING, READY, EngineCheck
from promptmid_qgis.plugin import PromptMIDPlugin
from promptmid_qgis.tasks import LOG_TAG
from promptmid_qgis.settings import PluginSettings


def _job(pair_files, out, engine="default"):
    return {"action": "register", "optical": pair_files[0], "sar": pair_files[1], "output_dir": str(out),
            "engine": engine, "transform": "affine", "land_use": "city", "points_source": "auto",
            "accept_uncertain": True}  # the plumbing, whatever the verdict


def _groups():
    return [g.name() for g in QgsProject.instance().layerTreeRoot().findGroups()]


def test_task_registers_in_the_worker_and_adds_layers(qgis_iface, qgis_new_project, qtbot, pair_files, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    plugin.initGui()
    try:
        task = plugin.start(_job(pair_files, tmp_path / "out"), python=engine_python)
        assert task is not None and plugin.busy
        assert plugin.start(_job(pair_files, tmp_path / "out2"), python=engine_python) is None  # refused while busy
        shown = []  # what the task manager showed: the engine's stages, not only a percentage
        task.stage.connect(lambda _m: shown.append(task.description()))
        qtbot.waitUntil(lambda: not plugin.busy, timeout=180_000)
        assert task.outcome.ok, task.outcome.error
        assert len(shown) > 3 and all(d.startswith("PromptMID: registering sar_shifted.tif: ") for d in shown)
        # The verdict of this pair near its (shifted) georeference may be either; each is shown its own way.
        uncertain = task.outcome.result["verdict"] == "uncertain"
        root = QgsProject.instance().layerTreeRoot()
        group = root.findGroup("PromptMID: sar_shifted_registered" + (" (uncertain)" if uncertain else ""))
        assert group is not None
        names = sorted(l.name() for l in group.findLayers())
        assert names == ["sar_shifted match vectors", "sar_shifted tie points", "sar_shifted_registered"]
        crs = QgsCoordinateReferenceSystem("EPSG:3395")
        for node in group.findLayers():
            assert node.layer().isValid() and node.layer().crs() == crs
        tie = next(n.layer() for n in group.findLayers() if n.name() == "sar_shifted tie points")
        assert isinstance(tie.renderer(), QgsGraduatedSymbolRenderer) and len(tie.renderer().ranges()) >= 3
        assert tie.featureCount() == task.outcome.result["n_gcps"] >= 50
        level = Qgis.Warning if uncertain else Qgis.Success
        qtbot.waitUntil(lambda: bool(qgis_iface.messageBar().get_messages(level)), timeout=5_000)
        messages = qgis_iface.messageBar().get_messages(level)
        assert messages and "tie points" in messages[-1] and ".points" in messages[-1]
        title, _, text = messages[-1].partition(":")  # the bar stores "title:text"
        assert title == "PromptMID" and text.startswith("Uncertain registration") == uncertain
        with open(task.outcome.result["outputs"]["points"], encoding="utf-8") as fh:  # georeferenced SAR: layer coordinates
            row = fh.read().splitlines()[2].split(",")
        assert abs(float(row[2])) > 1e6  # EPSG:3395 metres, not pixels
    finally:
        plugin.unload()


def test_cancel_is_not_a_failure_and_keeps_no_outputs(qgis_iface, qgis_new_project, qtbot, pair_files, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    out = tmp_path / "out"
    task = plugin.start(_job(pair_files, out, engine="default"), python=engine_python)
    statuses = []
    task.statusChanged.connect(statuses.append)
    qtbot.waitUntil(lambda: task.progress() > 0, timeout=60_000)
    task.cancel()
    qtbot.waitUntil(lambda: not plugin.busy, timeout=5_000)
    assert task.outcome.cancelled
    assert statuses[-1] == QgsTask.Complete and QgsTask.Terminated not in statuses  # QGIS says "Task failed" for Terminated
    assert not out.exists() or not os.listdir(out)
    bar = qgis_iface.messageBar()
    qtbot.waitUntil(lambda: bool(bar.get_messages(Qgis.Info)), timeout=5_000)
    assert any("cancelled" in m for m in bar.get_messages(Qgis.Info))
    assert not bar.get_messages(Qgis.Critical) and not bar.get_messages(Qgis.Warning)


def test_engine_errors_reach_the_message_bar_without_resource_warnings(qgis_iface, qgis_new_project, qtbot, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a raster")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = plugin.start({"action": "register", "optical": str(bad), "sar": str(bad) + "x", "output_dir": str(tmp_path / "o"),
                             "engine": "default"}, python=engine_python)
        qtbot.waitUntil(lambda: not plugin.busy, timeout=60_000)
        del task.outcome
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
    qtbot.waitUntil(lambda: bool(qgis_iface.messageBar().get_messages(Qgis.Critical)), timeout=5_000)
    msgs = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert msgs and "broken.tif" in msgs[-1] and "Traceback" not in msgs[-1]


def test_overlay_unchecked_adds_only_the_warped_raster(qgis_iface, qgis_new_project, fake_run, finished_task, tmp_path):
    plugin = PromptMIDPlugin(qgis_iface)
    plugin.add_warped, plugin.add_overlay = True, False
    plugin._finished(finished_task(fake_run(tmp_path / "a")))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    group = QgsProject.instance().layerTreeRoot().findGroup("PromptMID: sar_registered")
    assert [n.name() for n in group.findLayers()] == ["sar_registered"]
    plugin.add_warped, plugin.add_overlay = False, False
    plugin._finished(finished_task(fake_run(tmp_path / "b")))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    assert len(_groups()) == 1  # nothing asked for, nothing added


def test_reruns_are_told_apart_and_each_legend_is_its_own(qgis_iface, qgis_new_project, fake_run, finished_task, tmp_path):
    plugin = PromptMIDPlugin(qgis_iface)
    plugin._finished(finished_task(fake_run(tmp_path)))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    plugin._finished(finished_task(fake_run(tmp_path / "sar_run2", residual_scale=10.0)))
    assert sorted(_groups()) == ["PromptMID: sar_registered", "PromptMID: sar_registered (run 2)"]
    layers = {l.name(): l for l in QgsProject.instance().mapLayers().values()}
    assert {"sar_registered", "sar_registered (run 2)", "sar tie points", "sar tie points (run 2)"} <= set(layers)
    first, second = (layers[n].renderer().ranges() for n in ("sar tie points", "sar tie points (run 2)"))
    assert first[-1].upperValue() < 3.01 < second[-1].upperValue()  # classes from each run's own residuals
    label = second[0].label()
    assert label.endswith(" px") and all(len(v.split(".")[1]) == 1 for v in label[:-3].split(" - "))  # "1.2 - 4.5 px"


def test_uncertain_results_are_warnings_with_their_reason(qgis_iface, qgis_new_project, fake_run, finished_task, tmp_path):
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda msg, tag, level: logged.append((tag, level, msg)))
    plugin = PromptMIDPlugin(qgis_iface)
    result = fake_run(tmp_path, verdict="uncertain", confidence=0.31, expected_error_px=7.5,
                      verdict_reason="the best rotation is barely ahead of the second; try a wider search or another band",
                      warnings=["Thin-plate spline: leave-one-out error 5.6 px against 2.7 px for affine"])
    plugin._finished(finished_task(result, job={"land_cover": "lc.tif"}))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    bar = qgis_iface.messageBar()
    assert not bar.get_messages(Qgis.Success)
    msg = bar.get_messages(Qgis.Warning)[-1]
    assert "Uncertain registration (confidence 0.31): the best rotation is barely ahead" in msg
    assert "expected error of the warp 7.50 px" in msg and "Thin-plate spline" in msg and "Land use from the land-cover layer: forest" in msg
    assert _groups() == ["PromptMID: sar_registered (uncertain)"]
    assert any(tag == "PromptMID" and level == Qgis.Warning and "Uncertain registration" in m for tag, level, m in logged)
    assert any(level == Qgis.Warning and m.startswith("Thin-plate spline") for _t, level, m in logged)


def test_registered_results_stay_in_the_bar(qgis_iface, qgis_new_project, fake_run, finished_task, tmp_path, monkeypatch):
    pushed = []
    bar = qgis_iface.messageBar()
    original = bar.pushMessage
    monkeypatch.setattr(bar, "pushMessage", lambda *a, **k: (pushed.append(a), original(*a, **k)))
    PromptMIDPlugin(qgis_iface)._finished(finished_task(fake_run(tmp_path, verdict="registered", confidence=0.97)))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    title, text, level, duration = pushed[-1]
    assert level == Qgis.Success and duration == 0 and text.startswith("Registered.")


def test_missing_models_are_said_in_the_plugins_words_with_a_settings_button(qgis_iface, qgis_new_project, finished_task):
    plugin = PromptMIDPlugin(qgis_iface)
    error = ("Stable Diffusion 1.5 is missing: /m/stable-diffusion-v1-5\npass --model-dir, set $PROMPTMID_MODEL_DIR or run "
             "`promptmid models download`")
    plugin._finished(finished_task(error=error, kind="ModelMissingError"))
    QgsApplication.processEvents()  # bar messages are pushed after the task manager's
    item = qgis_iface.messageBar().currentItem()
    assert "missing model files (Stable Diffusion 1.5 is missing: /m/stable-diffusion-v1-5)" in item.text()
    assert "--model-dir" not in item.text() and "PromptMID settings" in item.text()
    assert [b.text() for b in item.findChildren(QPushButton) if b.text() == "Settings…"]


def test_the_engine_check_runs_in_the_background_once(qgis_iface, qgis_new_project, qtbot, tmp_path, engine_python):
    settings = PluginSettings(python=engine_python)
    settings.save()
    engine = EngineCheck()
    t0 = time.perf_counter()
    engine.ensure(settings)
    assert time.perf_counter() - t0 < 0.5 and engine.state == CHECKING  # the probe (seconds) is not on this thread
    assert "checking" in engine.summary()
    qtbot.waitUntil(lambda: engine.state != CHECKING, timeout=120_000)
    assert engine.state == READY and engine.python == engine_python and engine.cached_python(settings) == engine_python
    changes = []
    engine.changed.connect(lambda: changes.append(1))
    engine.ensure(settings)  # same settings: cached, no new check
    assert engine.state == READY and not changes


def test_a_run_asked_for_during_the_check_starts_after_it(qgis_iface, qgis_new_project, qtbot, tmp_path, engine_python):
    PluginSettings(python=engine_python).save()
    plugin = PromptMIDPlugin(qgis_iface)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a raster")
    job = {"action": "register", "optical": str(bad), "sar": str(bad) + "x", "output_dir": str(tmp_path / "o"), "engine": "classical"}
    t0 = time.perf_counter()
    assert plugin.start(job) is None and plugin.pending is job and plugin.busy
    assert time.perf_counter() - t0 < 0.5
    assert any("starts when it is done" in m for m in qgis_iface.messageBar().get_messages(Qgis.Info))
    qtbot.waitUntil(lambda: plugin.task is not None, timeout=120_000)
    qtbot.waitUntil(lambda: any("broken.tif" in m for m in qgis_iface.messageBar().get_messages(Qgis.Critical)), timeout=60_000)


def test_a_refused_uncertain_result_is_a_warning_in_the_dialogs_words(qgis_iface, qgis_new_project, finished_task):
    from promptmid.errors import UncertainError

    plugin = PromptMIDPlugin(qgis_iface)
    error = ("Uncertain registration, nothing written: the tie-point fit disagrees with the global search by 5.7 px. Inspect the "
             "pair, try another land-use class or engine, or rerun with --accept-uncertain to keep the result with a warning.")
    logged = []
    QgsApplication.messageLog().messageReceived.connect(lambda m, tag, level: logged.append((m, tag, level)))
    plugin._finished(finished_task(error=error, kind=UncertainError.__name__))
    QgsApplication.processEvents()
    msg = qgis_iface.messageBar().get_messages(Qgis.Warning)[-1]
    assert 'tick "Keep uncertain results" in the Register dialog to keep the result' in msg and "--accept" not in msg
    assert not qgis_iface.messageBar().get_messages(Qgis.Critical)
    ours = [(m, level) for m, tag, level in logged if tag == LOG_TAG]
    assert ours and all(level == Qgis.Warning and "--accept" not in m for m, level in ours)  # the log says it the same way


def test_advice_the_dialog_has_no_control_for_is_left_out():
    from promptmid_qgis.plugin import in_dialog_words

    error = ("Could not register: few consistent tie points. Check that the rasters overlap and show the same ground; try "
             "another land-use class, a wider search (--max-rotation, --scale-range) or another engine.")
    assert in_dialog_words(error).endswith("try another land-use class or another engine.")


def test_a_refused_uncertain_result_completes_the_task(monkeypatch):
    """QGIS announces "Task failed" when run() returns False: not for a judgement on the data."""
    import promptmid_qgis.tasks as tasks

    for kind, ok in (("UncertainError", True), ("RegistrationError", False), ("InputError", False)):
        monkeypatch.setattr(tasks, "run_job", lambda *a, kind=kind: tasks.JobOutcome(error="x", kind=kind))
        task = tasks.RegistrationTask("python", {}, lambda t: None)
        assert task.run() is ok
