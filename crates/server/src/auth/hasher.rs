//! Argon2id password hashing on a fixed pool of worker threads: at most
//! `workers` hashes run at once (each takes ~19 MiB), the rest wait in the
//! queue, so a burst of logins cannot exhaust memory (SPEC §6). Dedicated
//! threads, rather than tokio's blocking pool, keep the memory each hash
//! frees on the few threads that reuse it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&Argon2<'static>) + Send>;

#[derive(Clone)]
pub struct Hasher {
    queue: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

impl Hasher {
    /// OWASP's Argon2id parameters (m = 19 MiB, t = 2, p = 1); `fast` uses
    /// tiny ones for the test suite only.
    pub fn new(workers: usize, fast: bool) -> Hasher {
        let workers = if workers == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        } else {
            workers
        };
        let params = if fast {
            Params::new(256, 1, 1, None)
        } else {
            Params::new(19 * 1024, 2, 1, None)
        }
        .unwrap_or_default();
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking the next job.
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&argon),
                        Err(_) => return, // every Hasher is gone
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a hashing thread");
            }
        }
        Hasher { queue: tx }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, wait) = oneshot::channel();
        let job: Job = Box::new(move |argon| {
            let _ = done.send(f(argon));
        });
        self.queue
            .send(job)
            .map_err(|_| HashError("hashing threads stopped".into()))?;
        wait.await
            .map_err(|_| HashError("hashing job dropped".into()))
    }

    /// PHC string of the password (already normalized by the caller).
    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move |argon| {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            argon
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches the PHC string (whatever parameters it
    /// was made with). A malformed stored hash never matches.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.run(move |argon| match PasswordHash::new(&phc) {
            Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        })
        .await
        .unwrap_or(false)
    }

    /// Spends the same work as a real verification, so that an unknown
    /// login takes as long as a wrong password.
    pub async fn dummy_verify(&self, password: &str) {
        const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let _ = self.verify(password, DUMMY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let h = Hasher::new(1, true);
        let phc = h.hash("Kawa-Semi!Tsuyu9").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("Kawa-Semi!Tsuyu9", &phc).await);
        assert!(!h.verify("kawa-semi!tsuyu9", &phc).await);
        assert!(!h.verify("x", "not a hash").await);
    }
}
