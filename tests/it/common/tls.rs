//! A test certificate authority made with the `openssl` command: a CA certificate (CA:TRUE)
//! and a leaf for 127.0.0.1 signed by it (rustls refuses a self-signed leaf that is a CA).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A CA and a server certificate it signed, as files.
pub struct ServerCert {
    /// The CA certificate (PEM), what a client passes as `ca-file`.
    pub ca: PathBuf,
    /// The same, read.
    pub ca_pem: Vec<u8>,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// The server key (PEM).
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (`.ci/run` installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA certificate and key in `dir`, named `<name>.crt` / `<name>.key`.
pub fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// A fresh CA named `name` and a leaf for 127.0.0.1 and localhost signed by it, in `dir`.
pub fn server_cert(dir: &Path, name: &str) -> ServerCert {
    let (ca, ca_key) = make_ca(dir, name);
    let leaf_key = format!("{name}-leaf.key");
    let leaf_csr = format!("{name}-leaf.csr");
    let leaf_crt = format!("{name}-leaf.crt");
    let ext = dir.join(format!("{name}-leaf.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &leaf_key,
            "-out",
            &leaf_csr,
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &leaf_csr,
            "-CA",
            ca.to_str().unwrap(),
            "-CAkey",
            ca_key.to_str().unwrap(),
            "-CAcreateserial",
            "-out",
            &leaf_crt,
            "-days",
            "2",
            "-extfile",
            ext.to_str().unwrap(),
        ],
    );
    ServerCert {
        ca_pem: std::fs::read(&ca).unwrap(),
        ca,
        cert: dir.join(leaf_crt),
        key: dir.join(leaf_key),
    }
}
