//! HTTPS for an ingest on the studio's network: the certificate chain and private key from
//! PEM files (`serve --tls-cert`, `--tls-key`), served with rustls (ring provider, TLS 1.2
//! and 1.3, HTTP/1.1).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::server::IngestError;

pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<rustls::ServerConfig>, IngestError> {
    let bad = |flag: &str, path: &Path, why: String| IngestError::Tls(format!("{flag} {}: {why}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| bad("--tls-cert", cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("--tls-cert", cert_file, format!("{e}; give the certificate chain in PEM")))?;
    if certs.is_empty() {
        return Err(bad("--tls-cert", cert_file, "no CERTIFICATE in it; give the certificate chain in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        bad("--tls-key", key_file, format!("{e}; give the private key in PEM (PKCS#8, PKCS#1 or SEC1)"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| IngestError::Tls(format!("TLS set-up: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| IngestError::Tls(format!("--tls-cert and --tls-key do not make a usable pair: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
