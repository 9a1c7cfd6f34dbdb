//! The admin channel: the Unix domain socket in the data directory that a
//! local `kurir-relay backup` asks for a snapshot on. Its protocol, and who
//! can reach it, are in [`crate::backup`]; this module only serves it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use super::{Base, NodeError};
use crate::backup::{admin_socket, info_line};

/// Binds the admin socket in `data_dir` (mode 0600), replacing a stale
/// one: the caller holds the store, so no other relay listens there.
pub(super) fn bind(data_dir: &Path) -> Result<(UnixListener, PathBuf), NodeError> {
    let path = admin_socket(data_dir);
    let failed = |source: std::io::Error| {
        NodeError::Admin(format!(
            "cannot create the admin socket {}: {source}",
            path.display()
        ))
    };
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let listener = UnixListener::bind(&path).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    }
    Ok((listener, path))
}

/// Serves the admin socket until shutdown, one caller at a time.
pub(super) async fn admin_loop(listener: UnixListener, base: Arc<Base>) {
    let mut stop = base.shutdown.clone();
    let me = rustix::process::geteuid().as_raw();
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error = %e, "admin socket: accept failed");
                    continue;
                }
            },
        };
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == me || cred.uid() == 0 => {}
            Ok(cred) => {
                warn!(
                    uid = cred.uid(),
                    "admin socket: a caller of another user, closed"
                );
                continue;
            }
            Err(e) => {
                warn!(error = %e, "admin socket: the caller's user is unknown, closed");
                continue;
            }
        }
        tokio::select! {
            _ = stop.changed() => {
                base.store.drop_snapshot();
                return;
            }
            served = serve(stream, &base) => {
                if let Err(e) = served {
                    warn!(error = %e, "admin socket: the caller went away");
                }
            }
        }
    }
}

/// Answers one caller's requests until it closes the connection; a
/// snapshot it staged is removed at the end in any case.
async fn serve(stream: UnixStream, base: &Base) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut staged = false;
    let served = async {
        while let Some(line) = lines.next_line().await? {
            let answer = match line.trim() {
                "snapshot" if staged => "error a snapshot is already staged: send done".into(),
                "snapshot" => match base.store.snapshot().await {
                    Ok(snapshot) => {
                        staged = true;
                        info!(
                            entries = snapshot.entries,
                            held_us = snapshot.held.as_micros(),
                            "admin socket: snapshot staged for a backup"
                        );
                        info_line(&snapshot)
                    }
                    Err(e) => format!("error {}", e.to_string().replace('\n', " ")),
                },
                "done" => {
                    if staged {
                        base.store.drop_snapshot();
                        staged = false;
                    }
                    "ok".into()
                }
                other => format!("error unknown request {other:?}: send snapshot or done"),
            };
            write.write_all(format!("{answer}\n").as_bytes()).await?;
        }
        Ok(())
    }
    .await;
    if staged {
        base.store.drop_snapshot();
    }
    served
}
