//! A real headless Chromium (Debian's `chromium`), driven over WebDriver by Debian's
//! `chromedriver` through the `fantoccini` crate, for the console's tests.
//!
//! [`Browser::start`] runs a chromedriver of its own on a free port and opens one browser with
//! an empty profile; the methods are blocking (the browser's calls run on a runtime of its
//! own), so a test reads as a person's steps. Missing Chromium or chromedriver skips loudly,
//! except under CI, where it fails.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::in_ci;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The Tab key, for [`Browser::keys`].
pub const TAB: &str = "\u{e004}";
/// The Enter key.
pub const ENTER: &str = "\u{e007}";
/// Control+A then the modifier released: selects a field's whole text, so typing replaces it.
pub const SELECT_ALL: &str = "\u{e009}a\u{e000}";

/// One headless Chromium; closed (and its driver stopped) when dropped.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// The site every path is relative to (`https://127.0.0.1:port`).
    base: String,
    _profile: tempfile::TempDir,
}

/// The browser's window: a desktop's, or a phone's (375×667).
#[derive(Clone, Copy, Debug)]
pub enum Window {
    Desktop,
    Phone,
}

impl Browser {
    /// Opens a browser for the site at `base`, reading pages in `language` (its
    /// `Accept-Language`). `None` (after a loud message) when Chromium or chromedriver is not
    /// installed and CI is not set.
    pub fn start(base: &str, language: &str) -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).is_file())
            .collect();
        if !missing.is_empty() {
            if in_ci() {
                panic!(
                    "{missing:?} not found and CI is set: the console's browser tests must not \
                     be skipped in CI. Install Debian's `chromium` and `chromium-driver` \
                     packages (.ci/run does)."
                );
            }
            let _ = writeln!(
                std::io::stderr(),
                "\n########## SKIPPING BROWSER TEST ##########\n\
                 {missing:?} not found (apt-get install chromium chromium-driver).\n\
                 (With CI set this is a hard failure.)\n"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("a profile directory");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the browser's runtime");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--lang={language}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {
                    "intl.accept_languages": language,
                    "download.default_directory": profile.path().join("downloads"),
                    "download.prompt_for_download": false,
                },
            },
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let client = rt
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Some(Browser {
            rt,
            client: Some(client),
            driver,
            base: base.trim_end_matches('/').to_string(),
            _profile: profile,
        })
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Opens `path` of the site (or a whole address).
    pub fn goto(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        self.rt
            .block_on(self.c().goto(&url))
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The path and query of the page shown.
    pub fn path(&self) -> String {
        let url = self
            .rt
            .block_on(self.c().current_url())
            .expect("the address");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits (up to 30 s) until the page shown has a path starting with `prefix`, and
    /// answers its path and query.
    pub fn wait_for_path(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let path = self.path();
            if path.starts_with(prefix) {
                return path;
            }
            assert!(Instant::now() < deadline, "still on {path}, not {prefix}…");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 30 s) for an element matching `css` and answers it.
    fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.rt
            .block_on(
                self.c()
                    .wait()
                    .at_most(Duration::from_secs(30))
                    .for_element(Locator::Css(css)),
            )
            .unwrap_or_else(|e| panic!("no element {css} on {}: {e}", self.path()))
    }

    /// True when the page has an element matching `css` now.
    pub fn has(&self, css: &str) -> bool {
        self.rt
            .block_on(self.c().find_all(Locator::Css(css)))
            .is_ok_and(|found| !found.is_empty())
    }

    /// Types `text` into the field matching `css`, replacing what it held.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.rt.block_on(async {
            e.clear().await.expect("clearing a field");
            e.send_keys(text).await.expect("typing");
        });
    }

    /// Chooses the file at `path` in the file field matching `css`.
    pub fn choose_file(&self, css: &str, path: &std::path::Path) {
        let e = self.find(css);
        let path = path.to_str().expect("a file path in UTF-8");
        self.rt
            .block_on(e.send_keys(path))
            .expect("choosing a file");
    }

    /// Clicks the element matching `css`, a link or a form's button, and waits (up to 30 s)
    /// until the browser shows the document that answered it. Reading the page right after
    /// a click could otherwise find the old document's elements, gone a moment later.
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        // A mark on the window: a new document has a new window object without it.
        self.run("window.__loopOld = true;");
        self.rt.block_on(e.click()).expect("clicking");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // While the old document unloads, scripts may fail: that is not an answer yet.
            let old = self.rt.block_on(
                self.c()
                    .execute("return window.__loopOld === true;", vec![]),
            );
            if old.is_ok_and(|v| v == Value::Bool(false)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "clicking {css} on {} opened no new page",
                self.path()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Clicks the element matching `css` that changes no page (a download link, a control
    /// a script handles).
    pub fn click_here(&self, css: &str) {
        let e = self.find(css);
        self.rt.block_on(e.click()).expect("clicking");
    }

    /// The visible text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.rt.block_on(e.text()).expect("reading text")
    }

    /// The attribute `name` of the element matching `css`.
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css);
        self.rt
            .block_on(e.attr(name))
            .expect("reading an attribute")
    }

    /// Presses keys on whatever has the focus (WebDriver key codes, `\u{e004}` for Tab,
    /// `\u{e007}` for Enter).
    /// Presses `keys` in the element that has the focus ([`TAB`], [`ENTER`], [`SELECT_ALL`]
    /// are keys).
    pub fn keys(&self, keys: &str) {
        self.rt.block_on(async {
            let e = self
                .c()
                .active_element()
                .await
                .expect("the focused element");
            e.send_keys(keys).await.expect("pressing keys");
        });
    }

    /// The `id` (or `name`) of the element that has the focus.
    pub fn focused(&self) -> String {
        self.run("const e = document.activeElement; return e.id || e.name || e.tagName;")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Runs `script` in the page and answers what it returns.
    pub fn run(&self, script: &str) -> Value {
        self.rt
            .block_on(self.c().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    /// Runs `script`, which calls its last argument with its answer, and waits for it.
    pub fn run_async(&self, script: &str) -> Value {
        self.rt
            .block_on(self.c().execute_async(script, vec![]))
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    /// The page's title.
    pub fn title(&self) -> String {
        self.rt.block_on(self.c().title()).expect("the title")
    }

    /// The value of the cookie `name`, when the browser holds it for this site.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let all = self.rt.block_on(self.c().get_all_cookies()).ok()?;
        all.iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Sizes the window as a desktop's or a phone's.
    pub fn window(&self, w: Window) {
        let (width, height) = match w {
            Window::Desktop => (1280, 900),
            Window::Phone => (375, 667),
        };
        self.rt
            .block_on(self.c().set_window_size(width, height))
            .expect("sizing the window");
    }

    /// Waits (up to 60 s) for a download to complete whose file name starts with `prefix`,
    /// and answers its name and bytes (the file is removed, so the next download of the
    /// same name is a new one).
    pub fn downloaded(&self, prefix: &str) -> (String, Vec<u8>) {
        let dir = self._profile.path().join("downloads");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let done = std::fs::read_dir(&dir).ok().and_then(|entries| {
                entries.flatten().find_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name.starts_with(prefix) && !name.ends_with(".crdownload"))
                        .then_some((name, e.path()))
                })
            });
            if let Some((name, path)) = done {
                let bytes = std::fs::read(&path).expect("reading a download");
                std::fs::remove_file(&path).expect("removing a download");
                return (name, bytes);
            }
            assert!(
                Instant::now() < deadline,
                "no download {prefix}… in {dir:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The texts of the QR codes the window shows, read from a screenshot as a phone's camera
    /// would read the screen.
    pub fn qr_codes(&self) -> Vec<String> {
        read_qr_codes(&self.screenshot())
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        self.rt
            .block_on(self.c().screenshot())
            .expect("a screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A PNG image of `width`×`height` pixels, all of colour `rgb`.
pub fn png_image(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("a PNG header");
    let pixels: Vec<u8> = (0..width * height).flat_map(|_| rgb).collect();
    writer.write_image_data(&pixels).expect("the PNG's pixels");
    writer.finish().expect("a whole PNG");
    out
}

/// The texts of the QR codes in the PNG image `png`.
pub fn read_qr_codes(png: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a PNG of sane size")];
    let frame = reader.next_frame(&mut pixels).expect("the PNG's pixels");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let grey = |x: usize, y: usize| {
        let at = (y * width + x) * channels;
        match channels {
            1 | 2 => pixels[at],
            _ => {
                let (r, g, b) = (
                    pixels[at] as u32,
                    pixels[at + 1] as u32,
                    pixels[at + 2] as u32,
                );
                ((r * 299 + g * 587 + b * 114) / 1000) as u8
            }
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    image
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}
