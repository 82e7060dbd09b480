//! A client that keeps sending requests while a deploy, a failed deploy or a rollback
//! runs: about `RATE` a second, alternating a read and a write, each on a new connection
//! (the worst case for a switch), every failure kept with its reason. Bounded: it stops
//! when told, or after `LONGEST`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

const RATE: u32 = 100;
const LONGEST: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Load {
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Results>>,
    worker: Option<thread::JoinHandle<()>>,
}

#[derive(Debug, Default, Clone)]
pub struct Results {
    pub sent: u32,
    /// Each failure: when (since the start) and why.
    pub failures: Vec<(Duration, String)>,
    /// How long it has been sending.
    pub elapsed: Duration,
}

impl Results {
    /// Requests a second, as sent: a stalled client (requests hanging instead of failing)
    /// shows here.
    pub fn rate(&self) -> f64 {
        f64::from(self.sent) / self.elapsed.as_secs_f64().max(0.001)
    }

    /// The client kept its pace (more than 50 a second: a stalled client shows) and every
    /// request succeeded.
    pub fn assert_nothing_lost(&self) {
        assert!(self.rate() > 50.0, "{} requests a second", self.rate());
        assert_eq!(self.failures, [], "{} requests sent", self.sent);
    }
}

impl Load {
    /// Starts sending to `base` (`http://127.0.0.1:PORT`), where player `player` exists.
    pub fn start(base: &str, player: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let results = Arc::new(Mutex::new(Results::default()));
        let (base, player) = (base.to_owned(), player.to_owned());
        let worker = {
            let (stop, results) = (stop.clone(), results.clone());
            thread::spawn(move || {
                let started = Instant::now();
                let interval = Duration::from_secs(1) / RATE;
                let mut next = started;
                let mut count: u32 = 0;
                while !stop.load(Ordering::Relaxed) && started.elapsed() < LONGEST {
                    let outcome = if count % 2 == 0 {
                        request("GET", &format!("{base}/api/players/{player}"), None, 200)
                    } else {
                        let body = format!("{{\"place\":\"Forum\",\"points\":{}}}", 1 + count % 50);
                        request(
                            "POST",
                            &format!("{base}/api/players/{player}/scores"),
                            Some(&body),
                            201,
                        )
                    };
                    let mut results = results.lock().unwrap();
                    results.sent += 1;
                    results.elapsed = started.elapsed();
                    if let Err(reason) = outcome {
                        results.failures.push((started.elapsed(), reason));
                    }
                    drop(results);
                    count += 1;
                    next += interval;
                    if let Some(pause) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(pause);
                    }
                }
            })
        };
        Load {
            stop,
            results,
            worker: Some(worker),
        }
    }

    /// What was sent and what failed so far.
    pub fn results(&self) -> Results {
        self.results.lock().unwrap().clone()
    }

    pub fn finish(mut self) -> Results {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(worker) = self.worker.take() {
            worker.join().unwrap();
        }
        self.results()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request on a connection of its own; an error unless it answers `expected`.
fn request(method: &str, url: &str, body: Option<&str>, expected: u16) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(REQUEST_TIMEOUT))
        .max_idle_connections(0)
        .build()
        .into();
    let response = match body {
        None => agent.get(url).call(),
        Some(body) => agent
            .post(url)
            .header("content-type", "application/json")
            .send(body),
    };
    let mut response = response.map_err(|err| format!("{method} {url}: {err}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status == expected {
        Ok(())
    } else {
        Err(format!("{method} {url}: {status} {text}"))
    }
}
