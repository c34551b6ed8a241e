//! A browser over plain HTTP: keeps cookies, follows redirects by hand (so tests can stop
//! at, inspect or tamper with any hop), and fills in the test provider's login form.

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, Url};

/// A browser page as the test sees it.
#[derive(Debug)]
pub struct Page {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// A response header as text; empty when absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token the console puts in every page's `<meta name="csrf-token">`.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf-token\" content=\"";
        let start = self
            .body
            .find(marker)
            .map(|i| i + marker.len())
            .expect("page has a csrf meta tag");
        let end = self.body[start..].find('"').expect("end of csrf token");
        self.body[start..start + end].to_string()
    }
}

pub struct Browser {
    pub http: reqwest::Client,
    /// The Signoff server, for Origin headers on form posts.
    pub origin: String,
}

impl Browser {
    pub fn new(server: &str) -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser client");
        Browser {
            http,
            origin: server.trim_end_matches('/').to_string(),
        }
    }

    /// One request, no redirect followed.
    pub async fn hop(&self, method: Method, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut request = self.http.request(method, url);
        if let Some(form) = form {
            // A browser names the page's origin on form posts.
            let origin = Url::parse(url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            request = request.header("Origin", origin).form(form);
        }
        let response = request.send().await.expect("request");
        let url = response.url().clone();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Page {
            url,
            status,
            headers,
            body,
        }
    }

    /// Follows redirects from `url` until a page that is not a redirect, or until the next
    /// hop would go to a URL starting with `stop_before` (returned as the Location then).
    pub async fn follow(
        &self,
        method: Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        stop_before: Option<&str>,
    ) -> Result<Page, String> {
        let mut page = self.hop(method, url, form).await;
        for _ in 0..20 {
            if !(300..400).contains(&page.status) {
                return Ok(page);
            }
            let location = page
                .headers
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("redirect has a Location");
            let next = page.url.join(location).expect("valid Location").to_string();
            if stop_before.is_some_and(|prefix| next.starts_with(prefix)) {
                return Err(next);
            }
            page = self.hop(Method::GET, &next, None).await;
        }
        panic!("too many redirects from {url}");
    }

    pub async fn get(&self, url: &str) -> Page {
        self.follow(Method::GET, url, None, None).await.expect("no stop")
    }

    /// Posts a console form from one of our pages.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.follow(Method::POST, &format!("{}{path}", self.origin), Some(form), None)
            .await
            .expect("no stop")
    }

    /// Starts a sign-in at the server and logs in at the provider as `login`, stopping
    /// just before the browser returns to the server's callback. Returns that URL.
    pub async fn sign_in_until_callback(&self, login: &str) -> String {
        self.sign_in_from_until_callback("/auth/login", login).await
    }

    /// As [`Browser::sign_in_until_callback`], starting at `start` (a path on the server,
    /// such as `/auth/login?next=…`).
    pub async fn sign_in_from_until_callback(&self, start: &str, login: &str) -> String {
        let callback = format!("{}/auth/callback", self.origin);
        let form_page = match self
            .follow(Method::GET, &format!("{}{start}", self.origin), None, Some(&callback))
            .await
        {
            Ok(page) => page,
            Err(url) => return url, // Already signed in at the provider.
        };
        assert_eq!(form_page.status, 200, "provider login form: {}", form_page.body);
        let marker = "action=\"";
        let start = form_page.body.find(marker).expect("login form") + marker.len();
        let end = form_page.body[start..].find('"').expect("form action end");
        let action = form_page
            .url
            .join(&form_page.body[start..start + end])
            .expect("action URL")
            .to_string();
        match self
            .follow(
                Method::POST,
                &action,
                Some(&[("login", login), ("password", "pw")]),
                Some(&callback),
            )
            .await
        {
            Err(url) => url,
            Ok(page) => panic!(
                "login as {login} did not return to Signoff: {} {}",
                page.status, page.body
            ),
        }
    }

    /// Signs in as `login` through the provider; returns the page the server lands on.
    pub async fn sign_in(&self, login: &str) -> Page {
        let callback = self.sign_in_until_callback(login).await;
        self.get(&callback).await
    }

    /// A JSON API call with the session cookie (and the CSRF header for changes).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        csrf: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> crate::Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.origin))
            .header("Origin", &self.origin);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        crate::server::read_reply(request.send().await.expect("API call")).await
    }

    /// The reviewer's side of terminal sign-in: opens `/device`, types `user_code` as a
    /// person would, and returns the confirmation page (which names the code, where and
    /// when the sign-in started).
    pub async fn type_device_code(&self, user_code: &str) -> Page {
        let entry = self.get(&format!("{}/device", self.origin)).await;
        assert_eq!(entry.status, 200, "the code entry page: {}", entry.body);
        self.post_form("/device", &[("csrf", &entry.csrf()), ("user_code", user_code)])
            .await
    }

    /// Types `user_code` at `/device` and answers `approve` or `deny`; returns the last page.
    pub async fn answer_device_code(&self, user_code: &str, answer: &str) -> Page {
        let confirm = self.type_device_code(user_code).await;
        assert!(confirm.body.contains("Confirm terminal sign-in"), "{}", confirm.body);
        self.post_form(
            "/device",
            &[("csrf", &confirm.csrf()), ("user_code", user_code), ("answer", answer)],
        )
        .await
    }
}
