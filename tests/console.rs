//! The web console in a real headless Chromium (Debian's `chromium`, installed by `.ci/run`),
//! against a real `citydb serve --demo`, driven over the DevTools protocol: log in as each role
//! (by keyboard), search, open a citizen, propose a correction as a steward, approve it as a
//! different supervisor, see it in the history as an auditor, verify the log, and the citizen's
//! own page; a citizen's correction requests filed, handled by a steward and resolved by a
//! supervisor; the command forms built from the schema's input types used on citizen, parcel
//! and business pages — asserting on the rendered page. The run saves a screenshot per main page into
//! docs/console/ (docs/console.md shows them).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use common::binary::Serving;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium with one page, driven over the DevTools protocol.
struct Browser {
    child: Child,
    socket: Socket,
    session: String,
    next: u64,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

impl Browser {
    async fn launch() -> Option<Browser> {
        let Some(bin) = chromium() else {
            assert!(
                std::env::var_os("CITYDB_REQUIRE_ALL").is_none(),
                "no chromium on PATH (apt-get install chromium)"
            );
            eprintln!("SKIPPED: no chromium on PATH");
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--lang=vi",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap();
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next: 0,
            _profile: profile,
        };
        let target = browser
            .call_browser("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = browser
            .call_browser(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"].as_str().unwrap().to_owned();
        browser.call("Page.enable", json!({})).await;
        browser.viewport(1280, 800).await;
        Some(browser)
    }

    async fn send(&mut self, message: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = message;
        message["id"] = json!(id);
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("DevTools answered in time")
                .expect("DevTools connection open")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{message}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(json!({ "method": method, "params": params }))
            .await
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(json!({ "method": method, "params": params, "sessionId": session }))
            .await
    }

    /// Evaluates `expression` in the page (promises awaited); its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            r.get("exceptionDetails").is_none(),
            "{expression}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// Waits until `condition` (a JS expression) is true; panics with the page's text if not.
    async fn wait_for(&mut self, condition: &str) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            // A page still loading may lack what the condition reads: not yet, not an error.
            let probe = format!(
                "(() => {{ try {{ return !!({condition}); }} catch {{ return false; }} }})()"
            );
            if self.eval(&probe).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let text = self.eval("document.body.innerText").await;
        panic!(
            "never true: {condition}\npage:\n{}",
            text.as_str().unwrap_or("")
        );
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for("document.readyState === 'complete'").await;
    }

    async fn viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
    }

    async fn key(&mut self, key: &str, code: u32) {
        for kind in ["rawKeyDown", "keyUp"] {
            let mut event = json!({ "type": kind, "key": key, "code": key,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code });
            if key == "Enter" && kind == "rawKeyDown" {
                self.call(
                    "Input.dispatchKeyEvent",
                    json!({ "type": "char", "text": "\r", "key": "Enter" }),
                )
                .await;
                event["type"] = json!("keyDown");
            }
            self.call("Input.dispatchKeyEvent", event).await;
        }
    }

    async fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({ "text": text })).await;
    }

    /// The page's text.
    async fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// No horizontal scrolling at the current size.
    async fn fits(&mut self) {
        let (scroll, width) = (
            self.eval("document.documentElement.scrollWidth").await,
            self.eval("window.innerWidth").await,
        );
        assert!(
            scroll.as_u64() <= width.as_u64(),
            "horizontal scroll: {scroll} > {width}"
        );
    }

    async fn screenshot(&mut self, name: &str) {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Logs in by keyboard: the token field has the focus, Enter submits.
    async fn login(&mut self, base: &str, token: &str, expect_nav: &str) {
        self.login_after(base, token, expect_nav, "").await;
    }

    /// [`Browser::login`], evaluating `script` on the login page just before Enter.
    async fn login_after(&mut self, base: &str, token: &str, expect_nav: &str, script: &str) {
        self.eval("sessionStorage.clear()").await;
        self.goto(&format!("{base}/console/")).await;
        self.wait_for("document.activeElement && document.activeElement.id === 'token'")
            .await;
        self.type_text(token).await;
        if !script.is_empty() {
            self.eval(script).await;
        }
        self.key("Enter", 13).await;
        self.wait_for(&format!(
            "[...document.querySelectorAll('nav a')].some(a => a.textContent === {})",
            json!(expect_nav)
        ))
        .await;
    }

    async fn click(&mut self, selector: &str) {
        self.wait_for(&format!("document.querySelector({})", json!(selector)))
            .await;
        self.eval(&format!(
            "document.querySelector({}).click()",
            json!(selector)
        ))
        .await;
    }

    async fn fill(&mut self, selector: &str, value: &str) {
        self.wait_for(&format!("document.querySelector({})", json!(selector)))
            .await;
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); e.value = {}; e.dispatchEvent(new Event('change')); }})()",
            json!(selector),
            json!(value)
        ))
        .await;
    }
}

const DEMO_RECORD: &str = "citizen-22ed2420-9431-8001-b22c-d4ed4c85775b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let Some(mut b) = Browser::launch().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = Serving::start(&["--data", data.to_str().unwrap(), "--demo"]);
    server.wait_ready().await;
    let base = server.base.clone();
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-tokens.json")).unwrap()).unwrap();
    let token = |role: &str| tokens[role].as_str().unwrap().to_owned();

    // The login page, in Vietnamese; a bad token shows its code and the reason in words.
    b.goto(&format!("{base}/console/")).await;
    b.wait_for("document.querySelector('#token')").await;
    assert_eq!(
        b.eval("document.querySelector('h1').textContent").await,
        "Đăng nhập"
    );
    b.fits().await;
    b.screenshot("login").await;
    b.type_text("cdb_not-a-token").await;
    b.key("Enter", 13).await;
    b.wait_for("document.querySelector('.error[data-code=UNAUTHENTICATED]')")
        .await;
    assert!(b.text().await.contains("mã truy cập không hợp lệ"));

    // The citizen files correction requests: a refusal first, shown with its code in the form;
    // then three requests (by keyboard: Enter in a field submits), one of them withdrawn.
    b.login(&base, &token("citizen"), "Yêu cầu điều chỉnh của tôi")
        .await;
    b.click("nav a[href='#/myrequests']").await;
    b.wait_for("document.querySelector('h1').textContent === 'Yêu cầu điều chỉnh của tôi' && document.querySelector('#request-form')")
        .await;
    b.fill("#req-field", "name.given").await;
    b.fill("#req-value", "Hiển").await;
    b.fill("#req-reason", "   ").await;
    b.click("#request-submit").await;
    b.wait_for("document.querySelector('#request-form .error[data-code=INVALID_INPUT]')")
        .await;
    for (field, value, reason) in [
        ("name.given", "Hiển", "Tên trong giấy khai sinh là Hiển"),
        (
            "birth_place",
            "Xã Nam Sách",
            "Tôi đăng ký khai sinh ở Nam Sách",
        ),
        ("sex", "Nam", "Nhầm lẫn"),
    ] {
        b.fill("#req-field", field).await;
        b.fill("#req-value", value).await;
        b.fill("#req-evidence", "Trích lục khai sinh số 12/2026")
            .await;
        b.fill("#req-reason", reason).await;
        b.eval("document.querySelector('#req-reason').focus()")
            .await;
        b.key("Enter", 13).await;
        b.wait_for(&format!(
            "document.querySelector('#flash') && document.querySelector('main table').innerText.includes({})",
            json!(reason)
        ))
        .await;
    }
    // Today in Hải Phòng as dd/mm/yyyy: the day the server counts deadlines from.
    let today = b
        .eval(
            "new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Ho_Chi_Minh' }).format(new Date())",
        )
        .await;
    let today = today.as_str().unwrap().to_owned();
    let mine = b.text().await;
    assert!(mine.contains("Đã nộp, chờ tiếp nhận"), "{mine}");
    assert!(mine.contains("Tên\tHiển"), "the field in words: {mine}");
    assert!(mine.contains(&today), "submitted dd/mm/yyyy: {mine}");
    let deadline = regex_lite_dates(&mine, "Hạn tiếp nhận: ");
    assert_eq!(deadline.len(), 3, "{mine}");
    assert!(!mine.contains("Quá hạn"), "nothing overdue yet: {mine}");
    b.eval("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('Nhầm lẫn')).querySelector('button[data-request]').click()")
        .await;
    b.wait_for("document.querySelector('#flash') && [...document.querySelectorAll('main tr')].find(r => r.innerText.includes('Nhầm lẫn')).innerText.includes('Đã rút')")
        .await;
    b.fits().await;
    b.screenshot("citizen-requests").await;

    // The steward: search by name (diacritics optional), open the citizen.
    // The first page after the login is rendered once: the login used to render it and then
    // again on the `hashchange` it caused, replacing the search field — and what was typed
    // into it, when the typing came first (a flaky run of this test).
    b.login_after(
        &base,
        &token("steward"),
        "Tra cứu",
        "window.viewRenders = 0; new MutationObserver((records) => { window.viewRenders += \
         records.filter((r) => [...r.addedNodes].some((n) => n.tagName === 'H1')).length; })\
         .observe(document.getElementById('view'), { childList: true })",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        b.eval("window.viewRenders").await,
        json!(1),
        "the search page was rendered more than once after the login"
    );
    // By keyboard: the search field has the focus, Enter searches, Tab reaches the result.
    b.wait_for("document.activeElement && document.activeElement.id === 'q'")
        .await;
    b.type_text("ngo thi hien").await;
    b.key("Enter", 13).await;
    b.wait_for("document.querySelector('#results table')").await;
    assert!(b.text().await.contains("Ngô Thị Hiền"));
    b.fits().await;
    b.screenshot("search").await;
    b.eval("document.querySelector('#q').focus()").await;
    let mut reached = false;
    for _ in 0..12 {
        b.key("Tab", 9).await;
        let href = b.eval("document.activeElement.getAttribute('href')").await;
        if href == json!(format!("#/record/{DEMO_RECORD}")) {
            reached = true;
            break;
        }
    }
    assert!(reached, "the result is reachable with Tab");
    b.key("Enter", 13).await;
    b.wait_for("document.querySelector('h1') && document.querySelector('h1').textContent.startsWith('Ngô Thị Hiền')")
        .await;
    let page = b.text().await;
    assert!(page.contains("030174835130"), "{page}");
    assert!(page.contains("02/09/1974"), "dates as dd/mm/yyyy: {page}");
    assert!(page.contains("Lịch sử thay đổi"), "{page}");
    b.fits().await;
    b.screenshot("citizen").await;

    // Everyday commands, their forms built from the schema's input types. Change of residence,
    // opened by keyboard: the record's own id is filled in, the kind is a list, the date a date.
    b.eval("document.querySelector('#cmd-changeResidence-box summary').focus()")
        .await;
    b.key("Enter", 13).await;
    b.wait_for("document.querySelector('#cmd-changeResidence-input-commune')")
        .await;
    let uuid = DEMO_RECORD.trim_start_matches("citizen-");
    assert_eq!(
        b.eval("document.querySelector('#cmd-changeResidence-input-citizen').value")
            .await,
        json!(uuid)
    );
    assert_eq!(
        b.eval("[...document.querySelector('#cmd-changeResidence-input-kind').options].map(o => o.value + ':' + o.text).join()")
            .await,
        json!("PERMANENT:Thường trú,TEMPORARY:Tạm trú")
    );
    assert_eq!(
        b.eval("document.querySelector('#cmd-changeResidence-input-since').type + ' ' + document.querySelector('#cmd-changeResidence-input-since').required")
            .await,
        json!("date true")
    );
    b.fill("#cmd-changeResidence-input-kind", "PERMANENT").await;
    b.fill("#cmd-changeResidence-input-commune", "99999").await;
    b.fill("#cmd-changeResidence-input-address", "Số 12 phố Lạch Tray")
        .await;
    b.fill("#cmd-changeResidence-input-since", "2026-11-20")
        .await;
    assert_eq!(
        b.eval("document.querySelector('output[for=cmd-changeResidence-input-since]').textContent")
            .await,
        json!("20/11/2026"),
        "the chosen day shown dd/mm/yyyy"
    );
    b.fill("#cmd-changeResidence-reason", "Chuyển nơi thường trú")
        .await;
    b.click("#cmd-changeResidence button[type=submit]").await;
    b.wait_for("document.querySelector('#cmd-changeResidence .error[data-code=UNKNOWN_CODE]')")
        .await;
    // A code outside its list is refused next to the field that holds it.
    assert_eq!(
        b.eval("!!document.querySelector('#cmd-changeResidence [data-field=\"input.commune\"] .error[data-code=UNKNOWN_CODE]')")
            .await,
        json!(true)
    );
    b.fill("#cmd-changeResidence-input-commune", "10606").await;
    b.click("#cmd-changeResidence button[type=submit]").await;
    b.wait_for("document.querySelector('#flash') && document.body.innerText.includes('Số 12 phố Lạch Tray, Xã Nam Sách (từ 20/11/2026)')")
        .await;
    // A date that does not exist (a partial date typed dd/mm/yyyy) is refused next to its field.
    b.click("#cmd-recordDeath-box summary").await;
    b.wait_for("document.querySelector('#cmd-recordDeath-input-date')")
        .await;
    b.fill("#cmd-recordDeath-input-date", "31/02/2026").await;
    b.fill("#cmd-recordDeath-reason", "Giấy báo tử số 7").await;
    b.click("#cmd-recordDeath button[type=submit]").await;
    b.wait_for(
        "document.querySelector('[data-field=\"input.date\"] .error[data-code=INVALID_INPUT]')",
    )
    .await;
    assert_eq!(
        b.eval("document.activeElement.id").await,
        json!("cmd-recordDeath-input-date"),
        "the refused field takes the focus"
    );
    for (command, date_field) in [
        ("registerMarriage", "date"),
        ("issueIdentityCard", "issueDate"),
    ] {
        b.click(&format!("#cmd-{command}-box summary")).await;
        b.wait_for(&format!(
            "document.querySelector('#cmd-{command}-input-{date_field}[type=date]') && document.querySelector('#cmd-{command}-input-citizen').value === {}",
            json!(uuid)
        ))
        .await;
    }
    let forms = b.text().await;
    for title in [
        "Đăng ký thay đổi nơi cư trú",
        "Đăng ký kết hôn",
        "Đăng ký khai tử",
        "Cấp thẻ căn cước",
    ] {
        assert!(forms.contains(title), "{title}: {forms}");
    }
    b.fits().await;
    b.eval("document.querySelector('#cmd-recordDeath-box').scrollIntoView()")
        .await;
    b.screenshot("steward-command-forms").await;

    // A parcel: transfer of rights with a list of holders (rows added and removed), a share
    // refused next to its row's field; mortgages.
    let parcel = b
        .eval("fetch('/graphql', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + sessionStorage.getItem('citydb.token') }, body: JSON.stringify({ query: '{ parcels(first: 1) { edges { node { id } } } }' }) }).then(r => r.json()).then(d => d.data.parcels.edges[0].node.id)")
        .await;
    let parcel = parcel.as_str().expect("a demo parcel").to_owned();
    b.goto(&format!("{base}/console/#/record/{parcel}")).await;
    b.click("#cmd-transferRights-box summary").await;
    b.wait_for("document.querySelector('#cmd-transferRights-input-holders-0-share')")
        .await;
    assert_eq!(
        b.eval("document.querySelector('#cmd-transferRights-input-parcel').value")
            .await,
        json!(parcel.trim_start_matches("parcel-"))
    );
    b.eval("[...document.querySelectorAll('#cmd-transferRights button')].find(x => x.textContent === 'Thêm dòng' && x.closest('[data-field=\"input.holders\"]')).click()")
        .await;
    b.wait_for("document.querySelector('#cmd-transferRights-input-holders-1-holder-kind')")
        .await;
    b.eval("document.querySelector('[data-field=\"input.holders.0\"]').closest('.list-row').querySelector(':scope > button').click()")
        .await;
    // The first row removed: the one left is renumbered, its fields are the first holder's now.
    b.wait_for("document.querySelectorAll('[data-field=\"input.holders\"] .list-row').length === 1 && document.querySelector('[data-field=\"input.holders.0\"] legend').textContent.startsWith('Người nhận quyền (1)')")
        .await;
    b.fill("#cmd-transferRights-input-kind", "GIFT").await;
    b.fill("#cmd-transferRights-input-holders-0-holder-kind", "CITIZEN")
        .await;
    b.fill("#cmd-transferRights-input-holders-0-holder-id", uuid)
        .await;
    b.fill("#cmd-transferRights-input-holders-0-share", "1/0")
        .await;
    b.fill("#cmd-transferRights-input-date", "2026-11-25").await;
    b.fill("#cmd-transferRights-reason", "Hợp đồng tặng cho")
        .await;
    b.click("#cmd-transferRights button[type=submit]").await;
    b.wait_for("document.querySelector('[data-field=\"input.holders.0.share\"] .error[data-code=INVALID_INPUT]')")
        .await;
    b.click("#cmd-registerMortgage-box summary").await;
    b.wait_for("document.querySelector('fieldset[data-field=\"input.mortgage\"] #cmd-registerMortgage-input-mortgage-amount')")
        .await;
    b.click("#cmd-releaseMortgage-box summary").await;
    b.wait_for("document.querySelector('#cmd-releaseMortgage-input-contractNumber')")
        .await;
    let page = b.text().await;
    for title in [
        "Chuyển quyền sử dụng đất",
        "Đăng ký thế chấp",
        "Xoá đăng ký thế chấp",
    ] {
        assert!(page.contains(title), "{title}: {page}");
    }
    b.fits().await;
    b.eval("document.querySelector('#cmd-transferRights-box').scrollIntoView()")
        .await;
    b.screenshot("steward-parcel-forms").await;
    b.viewport(768, 1024).await;
    b.fits().await;
    b.viewport(1280, 800).await;

    // A business: its representatives pre-filled as rows; the head office a nested address.
    let business = b
        .eval("fetch('/graphql', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + sessionStorage.getItem('citydb.token') }, body: JSON.stringify({ query: '{ businesses(first: 1) { edges { node { id legalRepresentatives { id } } } } }' }) }).then(r => r.json()).then(d => d.data.businesses.edges[0].node)")
        .await;
    let representatives = business["legalRepresentatives"].as_array().unwrap().len();
    let business = business["id"].as_str().expect("a demo business").to_owned();
    b.goto(&format!("{base}/console/#/record/{business}")).await;
    b.click("#cmd-changeLegalRepresentatives-box summary").await;
    b.wait_for("document.querySelector('#cmd-changeLegalRepresentatives-input-date')")
        .await;
    assert_eq!(
        b.eval("document.querySelectorAll('[data-field=\"input.legalRepresentatives\"] .list-row').length")
            .await,
        json!(representatives)
    );
    b.click("#cmd-moveHeadOffice-box summary").await;
    b.wait_for("document.querySelector('fieldset[data-field=\"input.headOffice\"] #cmd-moveHeadOffice-input-headOffice-street')")
        .await;
    let page = b.text().await;
    for title in [
        "Chuyển trụ sở chính",
        "Thay đổi người đại diện theo pháp luật",
    ] {
        assert!(page.contains(title), "{title}: {page}");
    }
    b.fits().await;
    b.screenshot("steward-business-forms").await;

    // Registering a new record: the birth of Ngô Thị Hiền's daughter, through the schema-built
    // form on the registration page; the new record's id is filled in, and the mother's page
    // then lists the child.
    b.goto(&format!("{base}/console/#/register")).await;
    b.wait_for("document.querySelector('#cmd-registerCitizen-box')")
        .await;
    let forms = b.text().await;
    for title in [
        "Đăng ký khai sinh",
        "Đăng ký doanh nghiệp",
        "Đăng ký thửa đất",
    ] {
        assert!(forms.contains(title), "{title}: {forms}");
    }
    b.click("#cmd-registerCitizen-box summary").await;
    b.wait_for("document.querySelector('#cmd-registerCitizen-input-pin')")
        .await;
    let fresh = b
        .eval("document.querySelector('#cmd-registerCitizen-input-citizen').value")
        .await;
    assert!(
        fresh
            .as_str()
            .is_some_and(|v| uuid::Uuid::parse_str(v).is_ok()),
        "a fresh record id: {fresh}"
    );
    b.fill("#cmd-registerCitizen-input-pin", "031325000123")
        .await;
    b.fill("#cmd-registerCitizen-input-name-family", "Trần")
        .await;
    b.fill("#cmd-registerCitizen-input-name-middle", "Ngọc")
        .await;
    b.fill("#cmd-registerCitizen-input-name-given", "Anh").await;
    b.fill("#cmd-registerCitizen-input-sex", "FEMALE").await;
    b.fill("#cmd-registerCitizen-input-birthDate", "01/08/2025")
        .await;
    b.fill("#cmd-registerCitizen-input-birthPlace", "11311")
        .await;
    b.fill("#cmd-registerCitizen-input-mother", uuid).await;
    b.fill("#cmd-registerCitizen-input-origin-kind", "REGISTRATION")
        .await;
    b.fill("#cmd-registerCitizen-reason", "Đăng ký khai sinh")
        .await;
    b.fits().await;
    b.screenshot("steward-register").await;
    b.click("#cmd-registerCitizen button[type=submit]").await;
    // The new record's page opens, its mother named; her page lists the child.
    b.wait_for("document.querySelector('#flash') && document.querySelector('h1').textContent.startsWith('Trần Ngọc Anh')")
        .await;
    assert!(b.text().await.contains("Ngô Thị Hiền"));
    b.goto(&format!("{base}/console/#/record/{DEMO_RECORD}"))
        .await;
    b.wait_for("document.querySelector('#children')").await;
    // Children in birth order: the newborn comes last, after the demo's own.
    let children = b
        .eval("document.querySelector('#children').innerText")
        .await;
    assert!(
        children
            .as_str()
            .is_some_and(|c| c.ends_with(", Trần Ngọc Anh")),
        "{children}"
    );
    // The history says from when each fact holds: the move of 20/11/2026 from its own date.
    let history = b.text().await;
    assert!(history.contains("Hiệu lực từ"), "{history}");
    let moved = b
        .eval("[...document.querySelectorAll('tr')].filter(r => r.innerText.includes('ResidenceChanged')).pop().innerText")
        .await;
    assert!(
        moved.as_str().is_some_and(|r| r.contains("20/11/2026")),
        "{moved}"
    );

    // A court orders the move's address erased: the steward proposes redacting that event,
    // named by its log position as the history shows it.
    let position = b
        .eval("[...document.querySelectorAll('tr')].filter(r => r.innerText.includes('ResidenceChanged')).pop().children[1].innerText")
        .await;
    let position = position.as_str().unwrap_or_default().to_owned();
    assert!(
        position.parse::<u64>().is_ok(),
        "a log position: {position}"
    );
    b.click("#cmd-proposeRedaction-box summary").await;
    b.wait_for("document.querySelector('#cmd-proposeRedaction-input-position')")
        .await;
    b.fill("#cmd-proposeRedaction-input-position", &position)
        .await;
    b.fill(
        "#cmd-proposeRedaction-input-reason",
        "Quyết định của Tòa án về xoá địa chỉ",
    )
    .await;
    b.fill(
        "#cmd-proposeRedaction-input-legalBasis-documentNumber",
        "12/2026/QĐ-TA",
    )
    .await;
    b.fill(
        "#cmd-proposeRedaction-input-legalBasis-documentDate",
        "2026-11-25",
    )
    .await;
    b.click("#cmd-proposeRedaction button[type=submit]").await;
    b.wait_for("document.querySelector('#flash')").await;
    b.goto(&format!("{base}/console/#/record/{DEMO_RECORD}"))
        .await;
    b.wait_for("document.querySelector('#cor-field')").await;

    // A correction proposal: an invalid date is refused inline, then the proposal is recorded.
    b.fill("#cor-field", "name.given").await;
    b.fill("#cor-new", "Hiển").await;
    b.fill("#cor-reason", "Sai chính tả so với giấy khai sinh")
        .await;
    b.fill("#cor-doc", "45/QĐ-UBND").await;
    b.fill("#cor-date", "31/02/2026x").await;
    b.click("#propose").await;
    b.wait_for("document.querySelector('#correction-form .error[data-code=INVALID_INPUT]')")
        .await;
    b.fill("#cor-date", "02/11/2026").await;
    b.click("#propose").await;
    // The record is shown again after the flash: wait for both, so that the screenshot is
    // never of the loading state in between.
    b.wait_for("document.querySelector('#flash') && document.querySelector('#cor-field')")
        .await;
    b.screenshot("steward-proposal").await;

    // The steward handles the requests: nearest deadline first, reached with Tab and Enter.
    b.goto(&format!("{base}/console/#/requests")).await;
    b.wait_for("document.querySelector('h1').textContent === 'Yêu cầu điều chỉnh' && document.querySelector('main table')")
        .await;
    let list = b.text().await;
    assert!(
        list.contains("Ngô Thị Hiền (030174835130)")
            && list.contains("Hiển")
            && list.contains("Xã Nam Sách"),
        "{list}"
    );
    assert!(
        !list.contains("Nhầm lẫn") && !list.contains("\tNam\t"),
        "a withdrawn request is not open: {list}"
    );
    let order = b
        .eval("[...document.querySelectorAll('main tbody tr')].map(r => r.cells[0].innerText.slice(0, 10).split('/').reverse().join('-'))")
        .await;
    let order: Vec<String> = serde_json::from_value(order).unwrap();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "nearest deadline first");
    b.fits().await;
    b.screenshot("steward-requests").await;
    b.viewport(768, 1024).await;
    b.fits().await;
    b.viewport(1280, 800).await;
    b.eval("document.querySelector('nav a').focus()").await;
    let mut reached = false;
    for _ in 0..20 {
        b.key("Tab", 9).await;
        let here = b
            .eval("document.activeElement.classList.contains('handle') && document.activeElement.closest('tr').innerText.includes('Hiển')")
            .await;
        if here == json!(true) {
            reached = true;
            break;
        }
    }
    assert!(reached, "the request is reachable with Tab");
    b.key("Enter", 13).await;
    b.wait_for("document.querySelector('#ack-form')").await;
    b.click("#ack-form-submit").await;
    b.wait_for("document.querySelector('#flash') && document.querySelector('h1').innerText.includes('Đã tiếp nhận')")
        .await;
    // An extension beyond the decree's 15 days is refused with its code and the rule's reason.
    b.fill("#ext-days", "30").await;
    b.fill("#ext-reason", "Cần xác minh tại nơi đăng ký khai sinh")
        .await;
    b.click("#extend-form-submit").await;
    b.wait_for("document.querySelector('#extend-form .error[data-code=INVALID_INPUT]')")
        .await;
    assert!(b.text().await.contains("EXTENSION_TOO_LONG"));
    b.fill("#ext-days", "5").await;
    b.click("#extend-form-submit").await;
    b.wait_for(
        "document.querySelector('#flash') && document.body.innerText.includes('đã gia hạn 5 ngày')",
    )
    .await;
    // Resolving with the proposal not yet approved is refused: the data is not fixed yet.
    b.eval("(() => { const s = document.querySelector('#resolve-correction'); s.value = [...s.options].find(o => o.text.includes('\"Hiển\"')).value; })()")
        .await;
    b.click("#resolve-form-submit").await;
    b.wait_for("document.querySelector('#resolve-form .error[data-code=CONFLICT]')")
        .await;
    assert!(b.text().await.contains("CORRECTION_NOT_APPLIED"));
    b.fits().await;
    b.screenshot("steward-request").await;
    b.viewport(768, 1024).await;
    b.fits().await;
    b.viewport(1280, 800).await;
    // The other request is refused, with the reason and the legal basis the citizen is told.
    b.goto(&format!("{base}/console/#/requests")).await;
    b.wait_for("document.querySelector('main table')").await;
    b.eval("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('Xã Nam Sách')).querySelector('a.handle').click()")
        .await;
    b.wait_for("document.querySelector('#refuse-form')").await;
    b.fill(
        "#refuse-reason",
        "Sổ đăng ký khai sinh ghi nơi đăng ký là xã Hợp Tiến",
    )
    .await;
    b.fill("#refuse-basis", "Luật Hộ tịch 2014, điều 4").await;
    b.click("#refuse-form-submit").await;
    b.wait_for("document.querySelector('#flash') && document.querySelector('h1').innerText.includes('Bị từ chối')")
        .await;

    // A supervisor (another principal) sees it in the queue, old → new, and approves it.
    b.login(&base, &token("supervisor"), "Đề xuất chờ duyệt")
        .await;
    b.click("nav a[href='#/queue']").await;
    b.wait_for("document.querySelector('main table')").await;
    let queue = b.text().await;
    assert!(
        queue.contains("name.given") && queue.contains("\"Hiền\"") && queue.contains("\"Hiển\""),
        "{queue}"
    );
    assert!(
        queue.contains("Đề nghị xoá dữ liệu"),
        "the redaction proposals have their own section: {queue}"
    );
    b.fits().await;
    b.screenshot("supervisor-queue").await;
    // Approve this proposal (the demo data may hold others).
    b.eval("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('\"Hiển\"')).querySelector('button').click()")
        .await;
    b.wait_for("document.querySelector('#flash')").await;

    // The supervisor resolves the request with the correction now in effect.
    b.goto(&format!("{base}/console/#/requests")).await;
    b.wait_for("document.querySelector('main table')").await;
    b.eval("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('Hiển')).querySelector('a.handle').click()")
        .await;
    b.wait_for("document.querySelector('#resolve-correction')")
        .await;
    b.eval("(() => { const s = document.querySelector('#resolve-correction'); s.value = [...s.options].find(o => o.text.includes('\"Hiển\"')).value; })()")
        .await;
    b.click("#resolve-form-submit").await;
    b.wait_for("document.querySelector('#flash') && document.querySelector('h1').innerText.includes('Đã giải quyết')")
        .await;

    // The redaction, decided by a supervisor other than its proposer: the queue lists it, the
    // approval blanks the event, and the record's history marks it.
    b.goto(&format!("{base}/console/#/queue")).await;
    b.wait_for("document.querySelector('#redaction-queue') && document.querySelector('#redaction-queue').innerText.includes('12/2026/QĐ-TA')")
        .await;
    let row = format!("ResidenceChanged @ {position}");
    b.eval(&format!(
        "[...document.querySelectorAll('#redaction-queue tr')].find(r => r.innerText.includes({})).querySelector('.approve-redaction').click()",
        json!(row)
    ))
    .await;
    b.wait_for(&format!(
        "document.querySelector('#flash') && document.querySelector('#redaction-queue') && !document.querySelector('#redaction-queue').innerText.includes({})",
        json!(row)
    ))
    .await;
    b.goto(&format!("{base}/console/#/record/{DEMO_RECORD}"))
        .await;
    b.wait_for("document.body.innerText.includes('đã xoá theo lệnh')")
        .await;

    // Four eyes, enforced by the server and shown: a supervisor's own proposal is refused.
    b.goto(&format!("{base}/console/#/record/{DEMO_RECORD}"))
        .await;
    b.fill("#cor-field", "name.middle").await;
    b.fill("#cor-new", "Thu").await;
    b.fill("#cor-reason", "Theo trích lục khai sinh").await;
    b.fill("#cor-doc", "46/QĐ-UBND").await;
    b.fill("#cor-date", "03/11/2026").await;
    b.click("#propose").await;
    b.wait_for("document.querySelector('#flash')").await;
    b.goto(&format!("{base}/console/#/queue")).await;
    b.wait_for("document.querySelector('h1').textContent === 'Đề xuất chờ duyệt' && document.querySelector('main table') && document.querySelector('main').innerText.includes('\"Thu\"')")
        .await;
    b.eval("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('\"Thu\"')).querySelector('button').click()")
        .await;
    b.wait_for("document.querySelector('main .error[data-code=FORBIDDEN]')")
        .await;
    b.screenshot("supervisor-four-eyes").await;

    // The auditor: the approval in the history, a proof, the chain verified.
    b.login(&base, &token("auditor"), "Kiểm toán").await;
    b.goto(&format!("{base}/console/#/record/{DEMO_RECORD}"))
        .await;
    b.wait_for("document.body.innerText.includes('CorrectionApproved')")
        .await;
    assert!(b.text().await.contains("Ngô Thị Hiển"));
    b.screenshot("auditor-history").await;
    b.goto(&format!("{base}/console/#/audit")).await;
    b.click("#verify-log").await;
    b.wait_for("document.querySelector('#verify-log-out .ok')")
        .await;
    b.click("#verify-access").await;
    b.wait_for("document.querySelector('#verify-access-out .ok')")
        .await;
    b.fill("#audit-citizen", DEMO_RECORD).await;
    b.eval("document.querySelector('#audit-citizen').form.requestSubmit()")
        .await;
    b.wait_for("document.querySelector('#access-list table')")
        .await;
    assert!(b.text().await.contains("demo-steward"));
    b.screenshot("auditor").await;

    // The citizen: their record and who read it; English on request.
    b.login(&base, &token("citizen"), "Hồ sơ của tôi").await;
    b.wait_for("document.body.innerText.includes('Ai đã đọc dữ liệu của tôi')")
        .await;
    let mine = b.text().await;
    assert!(
        mine.contains("demo-supervisor") && mine.contains("demo-auditor"),
        "{mine}"
    );
    b.screenshot("citizen-own").await;
    b.click("#lang").await;
    b.wait_for("document.body.innerText.includes('Who read my data')")
        .await;

    // A tablet: 768×1024 without horizontal scrolling.
    b.viewport(768, 1024).await;
    b.wait_for("document.body.innerText.includes('Who read my data')")
        .await;
    b.fits().await;
    b.screenshot("citizen-own-768").await;

    // The citizen's requests now: resolved, refused with the reason, withdrawn.
    b.click("nav a[href='#/myrequests']").await;
    b.wait_for("document.querySelector('h1').textContent === 'My correction requests' && document.querySelector('main table')")
        .await;
    let requests = b.text().await;
    assert!(
        requests.contains("Resolved")
            && requests.contains("Refused: Sổ đăng ký khai sinh")
            && requests.contains("Withdrawn"),
        "{requests}"
    );
    assert!(requests.contains("extended by 5 days"), "{requests}");
    b.fits().await;
    b.screenshot("citizen-requests-768").await;

    // An open request whose deadline has passed is marked overdue, counted in Hải Phòng days:
    // the browser's clock is moved 20 days on (the server's sweep records it at its next run).
    b.fill("#req-field", "identity_card").await;
    b.fill("#req-value", "Cấp ngày 10/10/2021 tại Hải Phòng")
        .await;
    b.fill("#req-reason", "Nơi cấp ghi sai").await;
    b.click("#request-submit").await;
    b.wait_for("document.querySelector('#flash') && document.querySelector('main table').innerText.includes('Nơi cấp ghi sai')")
        .await;
    assert!(!b.text().await.contains("Overdue"));
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 20.0 * 86_400.0;
    b.call(
        "Emulation.setVirtualTimePolicy",
        json!({ "policy": "advance", "initialVirtualTime": later }),
    )
    .await;
    b.eval("location.reload()").await;
    b.wait_for("[...document.querySelectorAll('main tr')].some(r => r.innerText.includes('Nơi cấp ghi sai') && r.querySelector('.badge.overdue'))")
        .await;
    b.screenshot("citizen-requests-overdue").await;
    server.stop();
}

/// Every `dd/mm/yyyy` right after `label` in `text`.
fn regex_lite_dates(text: &str, label: &str) -> Vec<String> {
    text.match_indices(label)
        .filter_map(|(i, _)| text.get(i + label.len()..i + label.len() + 10))
        .filter(|d| {
            let b = d.as_bytes();
            b.len() == 10
                && b[2] == b'/'
                && b[5] == b'/'
                && d.chars().filter(char::is_ascii_digit).count() == 8
        })
        .map(str::to_owned)
        .collect()
}
