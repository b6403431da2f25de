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
