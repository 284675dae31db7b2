//! Argon2id password hashing on a fixed pool of worker threads: at most
//! `workers` hashes run at once, the rest wait in the queue, so a burst of
//! logins cannot exhaust memory (SPEC §6). Each worker keeps one Argon2
//! memory buffer (19 MiB with the default parameters) and reuses it for
//! every hash, so memory stays at workers × buffer instead of growing with
//! what the allocator keeps of freed 19 MiB blocks.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// Largest memory a stored hash may ask for (256 MiB); a hash asking for
/// more never matches rather than exhausting memory.
const MAX_BLOCKS: usize = 256 * 1024;

/// One hashing thread's state.
struct Worker {
    params: Params,
    memory: Vec<Block>,
}

impl Worker {
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.memory.len() < n {
            self.memory.resize(n, Block::default());
        }
        &mut self.memory[..n]
    }

    fn hash(&mut self, password: &[u8]) -> Result<String, HashError> {
        let err = |e: &dyn std::fmt::Display| HashError(e.to_string());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt
            .as_salt()
            .decode_b64(&mut salt_buf)
            .map_err(|e| err(&e))?
            .to_vec();
        let params = self.params.clone();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon
            .hash_password_into_with_memory(
                password,
                &salt_bytes,
                &mut out,
                self.blocks(params.block_count()),
            )
            .map_err(|e| err(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| err(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| err(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string, with whatever parameters
    /// it was made with. A malformed or oversized stored hash never matches.
    fn verify(&mut self, password: &[u8], phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
            return false;
        };
        if params.block_count() > MAX_BLOCKS {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let salt_bytes = salt_bytes.to_vec();
        let argon = Argon2::new(algorithm, version, params.clone());
        let mut out = vec![0u8; expected.len()];
        if argon
            .hash_password_into_with_memory(
                password,
                &salt_bytes,
                &mut out,
                self.blocks(params.block_count()),
            )
            .is_err()
        {
            return false;
        }
        bool::from(out.ct_eq(expected.as_bytes()))
    }
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

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
            let mut worker = Worker {
                params: params.clone(),
                memory: Vec::new(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // The lock is held only while taking the next job.
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(&mut worker),
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
        f: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, wait) = oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let _ = done.send(f(worker));
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
        self.run(move |w| w.hash(password.as_bytes())).await?
    }

    /// Whether `password` matches the PHC string (whatever parameters it
    /// was made with). A malformed stored hash never matches.
    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        let password = password.to_owned();
        let phc = phc.to_owned();
        self.run(move |w| w.verify(password.as_bytes(), &phc))
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

    #[tokio::test]
    async fn reads_hashes_made_by_the_standard_hasher_and_the_other_way() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let standard = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(19 * 1024, 2, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let phc = standard
            .hash_password(b"Semi-Kawa-Tsuyu9", &salt)
            .unwrap()
            .to_string();
        let h = Hasher::new(1, false);
        assert!(h.verify("Semi-Kawa-Tsuyu9", &phc).await);
        assert!(!h.verify("Semi-Kawa-Tsuyu8", &phc).await);
        let ours = h.hash("Semi-Kawa-Tsuyu9").await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(standard
            .verify_password(b"Semi-Kawa-Tsuyu9", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        // A stored hash asking for absurd memory never matches.
        assert!(!h.verify("x", "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG").await);
    }
}
