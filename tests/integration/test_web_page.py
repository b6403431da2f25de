"""The web page in headless Chromium (Debian's chromium, driven by Playwright)."""



def test_type_synthesize_play_and_queue(browser, service_url, library_voice):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(service_url + "/")
    page.wait_for_function("document.getElementById('ready').textContent.startsWith('Model ready')")
    page.wait_for_selector(f"#voice option[value='{library_voice}']", state="attached")
    page.fill("#text", "Hello from the browser.")
    page.click("#speak")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Done')", timeout=60_000)
    assert page.get_attribute("#player", "src").startswith("blob:")
    duration = page.evaluate("""() => new Promise((resolve) => {
        const player = document.getElementById('player');
        if (player.readyState >= 1) resolve(player.duration);
        player.onloadedmetadata = () => resolve(player.duration);
    })""")
    assert duration > 0
    assert page.is_visible("#download")

    page.click("#submit")
    page.wait_for_function("document.getElementById('status').textContent.startsWith('Queued job_')")
    page.wait_for_selector("#jobs .job-status:text('succeeded')", timeout=60_000)
    assert not errors


def test_errors_are_shown_not_swallowed(browser, service_url, library_voice):
    page = browser.new_page()
    page.goto(service_url + "/")
    page.wait_for_selector(f"#voice option[value='{library_voice}']", state="attached")
    page.fill("#text", "   ")
    page.click("#speak")
    page.wait_for_selector("#status.error")
    assert "nothing to speak" in page.inner_text("#status")


def test_upload_a_voice_from_the_page(browser, service_url, reference_clip):
    page = browser.new_page()
    page.goto(service_url + "/")
    page.fill("#new-id", "browser-voice")
    page.set_input_files("#new-file", str(reference_clip))
    page.check("#new-xvec")
    page.click("#upload")
    page.wait_for_function("document.getElementById('upload-status').textContent === 'Created.'", timeout=30_000)
    assert page.eval_on_selector("#voice", "el => el.value") == "browser-voice"


def test_record_a_clip_hear_it_and_create_a_voice(microphone_browser, service_url, tmp_path):
    """A person records the reference in the browser (MediaRecorder; the microphone plays a
    real speech recording), hears it back, and creates the voice from it."""
    page = microphone_browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(service_url + "/")
    page.screenshot(path=str(tmp_path / "1-start.png"), full_page=True)
    page.fill("#new-id", "recorded")
    page.click("#record")
    page.wait_for_function("document.getElementById('record-status').textContent === 'Recording…'")
    page.wait_for_timeout(2500)
    page.screenshot(path=str(tmp_path / "2-recording.png"), full_page=True)
    page.click("#stop")
    page.wait_for_function("document.getElementById('record-status').textContent.startsWith('Recorded')",
                           timeout=10_000)
    page.screenshot(path=str(tmp_path / "3-recorded.png"), full_page=True)
    seconds = page.evaluate("""() => new Promise((resolve) => {
        const player = document.getElementById('recording');
        if (player.readyState >= 1) resolve(player.duration);
        player.onloadedmetadata = () => resolve(player.duration);
    })""")
    assert 2.0 <= seconds <= 4.0 and page.is_visible("#recording")
    # what the page sends is the microphone's speech, not silence
    peak = page.evaluate("""async () => {
        const data = await (await fetch(document.getElementById('recording').src)).arrayBuffer();
        const samples = new Int16Array(data, 44);
        return samples.reduce((peak, s) => Math.max(peak, Math.abs(s)), 0);
    }""")
    assert peak > 1000
    page.fill("#new-text", "This is my voice, recorded in the browser for a new clone.")
    page.click("#upload")
    page.wait_for_function("document.getElementById('upload-status').textContent === 'Created.'", timeout=30_000)
    page.screenshot(path=str(tmp_path / "4-created.png"), full_page=True)
    assert page.eval_on_selector("#voice", "el => el.value") == "recorded"
    assert not errors


def test_insert_a_pause_set_the_speed_and_download_the_subtitles(browser, service_url, library_voice, tmp_path):
    page = browser.new_page()
    page.goto(service_url + "/")
    page.wait_for_selector(f"#voice option[value='{library_voice}']", state="attached")
    page.fill("#text", "First sentence. Second sentence.")
    page.eval_on_selector("#text", "el => el.setSelectionRange(15, 15)")  # after "First sentence."
    page.select_option("#pause-length", "1s")
    page.click("#insert-pause")
    assert page.input_value("#text") == "First sentence. [pause:1s]  Second sentence."
    page.fill("#speed", "1.5")
    page.click("#submit")
    page.wait_for_selector("#jobs .job-status:text('succeeded')", timeout=60_000)
    job_id = page.eval_on_selector("#jobs tr", "el => el.dataset.id")
    job = page.evaluate(f"async () => (await fetch('/v1/jobs/{job_id}')).json()")
    assert job["request"]["speed"] == 1.5 and "[pause:1s]" in job["request"]["text"]
    chunks = job["result"]["chunks"]
    assert round(chunks[1]["start"] - chunks[0]["end"], 3) == 1.0  # the pause, exactly
    page.click("#jobs button")
    page.wait_for_selector("#download-subtitles", state="visible")
    page.screenshot(path=str(tmp_path / "subtitles.png"), full_page=True)
    assert page.get_attribute("#download-subtitles", "download") == f"{job_id}.srt"
    srt = page.evaluate("async () => (await fetch(document.getElementById('download-subtitles').href)).text()")
    assert srt.startswith("1\n") and "First sentence." in srt and "Second sentence." in srt and "[pause" not in srt
