//! A real headless Chromium for the console's tests, driven over the W3C WebDriver protocol
//! by Debian's `chromedriver` (a handful of JSON calls over HTTP, so no WebDriver crate is
//! needed). The tests fail, never skip, when either program is missing.
//!
//! Waits poll the page every 50 ms up to [`WAIT`]: the page's own events are invisible from
//! here, and a condition that holds ends the wait at once.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a wait for something on the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// The key of an element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One browser session: `chromedriver` as a child process and the Chromium it started.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    screenshots: PathBuf,
}

/// An element on the page (a WebDriver reference).
#[derive(Debug, Clone)]
pub struct Element(String);

fn program(env: &str, candidates: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return PathBuf::from(path);
    }
    for candidate in candidates {
        let path = PathBuf::from(candidate);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "{} is required for the console's browser tests and was not found ({}); install \
         Debian's `chromium` and `chromium-driver` (`.ci/run` does), or set {env}",
        candidates[0], env
    );
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium at 1280×900. Screenshots go to
    /// `target/console-screenshots/`.
    pub async fn start() -> Self {
        let driver_path = program(
            "BATON_CHROMEDRIVER",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        );
        let chromium = program(
            "BATON_CHROMIUM",
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        );
        let port = crate::free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", driver_path.display()));
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("baton-chromium-{port}"));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("ask chromedriver for a session")
            .json()
            .await
            .expect("chromedriver answers JSON");
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {response}"))
            .to_owned();
        let screenshots =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&screenshots).expect("create target/console-screenshots");
        Self {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            screenshots,
        }
    }

    /// One WebDriver command; its `value`. Panics with the driver's message on an error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_command(method, path, body).await {
            Ok(value) => value,
            Err(message) => panic!("WebDriver {path}: {message}"),
        }
    }

    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(body["value"].clone())
        } else {
            Err(body["value"]["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_owned())
        }
    }

    /// Opens `url` and waits until the document has loaded.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The page's current URL.
    pub async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its return value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    async fn find_now(&self, using: &str, value: &str) -> Vec<Element> {
        let found = self
            .try_command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": using, "value": value})),
            )
            .await
            .unwrap_or(Value::Null);
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| e[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits for the elements `using`/`value` selects to include a visible one; returns it.
    async fn wait_visible(&self, using: &str, value: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            for element in self.find_now(using, value).await {
                if self.is_displayed(&element).await {
                    return element;
                }
            }
            if Instant::now() >= deadline {
                let text = self.text_of_page().await;
                panic!(
                    "no visible element for {using} `{value}` within {WAIT:?}; the page says:\n{text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first visible element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Element {
        self.wait_visible("css selector", selector).await
    }

    /// The visible elements matching `selector` now, without waiting.
    pub async fn visible(&self, selector: &str) -> Vec<Element> {
        let mut shown = Vec::new();
        for element in self.find_now("css selector", selector).await {
            if self.is_displayed(&element).await {
                shown.push(element);
            }
        }
        shown
    }

    /// Waits for a visible button whose text is `label`.
    pub async fn button(&self, label: &str) -> Element {
        self.wait_visible(
            "xpath",
            &format!("//button[normalize-space()={}]", xpath_text(label)),
        )
        .await
    }

    /// Waits for a visible button `label` in the table row that holds a cell whose text is
    /// `cell`.
    pub async fn button_in_row(&self, cell: &str, label: &str) -> Element {
        self.wait_visible(
            "xpath",
            &format!(
                "//tr[td[normalize-space()={}]]//button[normalize-space()={}]",
                xpath_text(cell),
                xpath_text(label)
            ),
        )
        .await
    }

    /// The visible buttons whose text is `label`, now.
    pub async fn buttons_now(&self, label: &str) -> Vec<Element> {
        let mut shown = Vec::new();
        for element in self
            .find_now(
                "xpath",
                &format!("//button[normalize-space()={}]", xpath_text(label)),
            )
            .await
        {
            if self.is_displayed(&element).await {
                shown.push(element);
            }
        }
        shown
    }

    /// Waits for a visible link whose text is `label`.
    pub async fn link(&self, label: &str) -> Element {
        self.wait_visible(
            "xpath",
            &format!("//a[normalize-space()={}]", xpath_text(label)),
        )
        .await
    }

    /// Waits for the form control labelled `label` (through `<label for>`).
    pub async fn field(&self, label: &str) -> Element {
        self.wait_visible(
            "xpath",
            &format!(
                "//*[@id=//label[normalize-space()={}]/@for]",
                xpath_text(label)
            ),
        )
        .await
    }

    /// Clicks `label`'s button.
    pub async fn click_button(&self, label: &str) {
        let button = self.button(label).await;
        self.click(&button).await;
    }

    /// Clicks `label`'s link.
    pub async fn click_link(&self, label: &str) {
        let link = self.link(label).await;
        self.click(&link).await;
    }

    /// Types `text` into the field labelled `label`, replacing what it held.
    pub async fn fill(&self, label: &str, text: &str) {
        let field = self.field(label).await;
        self.clear(&field).await;
        self.type_into(&field, text).await;
    }

    /// Picks the option whose value is `value` in the select labelled `label`.
    pub async fn choose(&self, label: &str, value: &str) {
        let field = self.field(label).await;
        self.execute(
            "arguments[0].value = arguments[1]; \
             arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            vec![element_json(&field), json!(value)],
        )
        .await;
    }

    pub async fn click(&self, element: &Element) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn clear(&self, element: &Element) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.command(
            reqwest::Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &Element) -> String {
        self.command(
            reqwest::Method::GET,
            &format!("/element/{}/text", element.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    async fn is_displayed(&self, element: &Element) -> bool {
        self.try_command(
            reqwest::Method::GET,
            &format!("/element/{}/displayed", element.0),
            None,
        )
        .await
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
    }

    /// The whole page's visible text.
    pub async fn text_of_page(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Waits until the page's visible text contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
        self.wait_until(&format!("the page to show `{text}`"), async || {
            self.text_of_page().await.contains(text)
        })
        .await;
    }

    /// Waits until an element matching `selector` shows `text`. Read in one script, so that a
    /// page redrawing meanwhile never leaves the test holding a removed element.
    pub async fn wait_for_text_in(&self, selector: &str, text: &str) {
        self.wait_until(&format!("`{selector}` to show `{text}`"), async || {
            self.execute(
                "return [...document.querySelectorAll(arguments[0])]\
                 .some((e) => e.innerText.includes(arguments[1]));",
                vec![json!(selector), json!(text)],
            )
            .await
                == Value::Bool(true)
        })
        .await;
    }

    /// Waits until `condition` holds; fails the test with `what` and the page's text if it
    /// does not within [`WAIT`].
    pub async fn wait_until(&self, what: &str, condition: impl AsyncFn() -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if condition().await {
                return;
            }
            if Instant::now() >= deadline {
                let text = self.text_of_page().await;
                panic!("waited {WAIT:?} for {what}; the page says:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sets the window's size (e.g. a phone's width for a screenshot).
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the page as `target/console-screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine as _;
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a screenshot in base64");
        std::fs::write(self.screenshots.join(format!("{name}.png")), bytes)
            .expect("write the screenshot");
    }

    /// The value of the cookie `name` as the browser holds it (HttpOnly ones included).
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.try_command(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await
            .ok()
            .and_then(|c| c["value"].as_str().map(str::to_owned))
    }

    /// Ends the session and the browser.
    pub async fn quit(mut self) {
        let _ = self.try_command(reqwest::Method::DELETE, "", None).await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test ends here without `quit`: chromedriver takes its browser down with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `element` as a script argument.
pub fn element_json(element: &Element) -> Value {
    json!({ ELEMENT_KEY: element.0 })
}

/// `text` as an XPath string literal (XPath 1 has no escapes: quotes are concatenated).
fn xpath_text(text: &str) -> String {
    if !text.contains('\'') {
        return format!("'{text}'");
    }
    let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
    format!("concat({})", parts.join(", \"'\", "))
}
