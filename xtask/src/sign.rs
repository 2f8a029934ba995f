//! `cargo xtask keygen`, `sign` and `verify`: cosign signatures, in cosign's own format, over
//! the images and SBOMs in the local layouts, with a key pair and no network.
//!
//! The format is cosign's (`specs/SIGNATURE_SPEC.md` in sigstore/cosign): for each signed
//! manifest, a simple-signing payload naming the image (`docker-reference`) and the manifest's
//! digest, signed with ECDSA P-256 over SHA-256, stored as the layer of a signature manifest
//! tagged `sha256-<hex>.sig`, the signature base64 in its `dev.cosignproject.cosign/signature`
//! annotation. Keys are cosign's too (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt and
//! secretbox, the password in `COSIGN_PASSWORD`), made and read by the `sigstore` crate: a key
//! from `cosign generate-key-pair` signs here, and `cosign verify --key` accepts what this signs
//! once pushed. The release workflow signs keylessly (Fulcio, Rekor) with cosign itself.
//!
//! `verify` re-reads everything: every blob's digest and size, each layer's diff id, the SBOM
//! referrers' subjects, and a valid signature for every image index, image and SBOM.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageConfiguration, ImageIndex, ImageManifest,
    ImageManifestBuilder, MediaType,
};
use serde::{Deserialize, Serialize};
use sigstore::crypto::{
    CosignVerificationKey, Signature, SigningScheme, signing_key::SigStoreKeyPair,
};

use crate::{oci, oci::Layout, sbom::tag_of};

/// The media type of a simple-signing payload layer.
pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the base64 signature.
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// The simple-signing payload (containers/image `docs/containers-signature.5.md`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Payload {
    pub(crate) critical: Critical,
    pub(crate) optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Critical {
    pub(crate) identity: Identity,
    pub(crate) image: Image,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Identity {
    #[serde(rename = "docker-reference")]
    pub(crate) docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Image {
    #[serde(rename = "docker-manifest-digest")]
    pub(crate) docker_manifest_digest: String,
}

/// The config cosign writes into a signature manifest: an empty image whose one "layer" is the
/// payload.
#[derive(Serialize)]
struct SignatureConfig {
    architecture: &'static str,
    created: &'static str,
    history: [History; 1],
    os: &'static str,
    rootfs: RootFs,
    config: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn password() -> Vec<u8> {
    crate::env_var("COSIGN_PASSWORD")
        .map(|p| p.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default()
}

/// `cargo xtask keygen DIR`: a new key pair as `DIR/cosign.key` and `DIR/cosign.pub`.
pub(crate) fn keygen(dir: &Path) -> anyhow::Result<()> {
    let signer = SigningScheme::ECDSA_P256_SHA256_ASN1
        .create_signer()
        .map_err(|e| anyhow::anyhow!("cannot make a key pair: {e}"))?;
    let pair = signer
        .to_sigstore_keypair()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let private = pair
        .private_key_to_encrypted_pem(&password())
        .map_err(|e| anyhow::anyhow!("cannot encrypt the private key: {e}"))?;
    let public = pair
        .public_key_to_pem()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = dir.join("cosign.key");
    write_private(&key, private.as_bytes())?;
    std::fs::write(dir.join("cosign.pub"), public)
        .with_context(|| format!("cannot write {}", dir.join("cosign.pub").display()))?;
    eprintln!(
        "keygen: {} (encrypted with COSIGN_PASSWORD) and {}",
        key.display(),
        dir.join("cosign.pub").display()
    );
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A private key read from cosign's encrypted PEM.
pub(crate) struct Signer {
    signer: sigstore::crypto::SigStoreSigner,
}

impl Signer {
    pub(crate) fn load(key: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
        let pair = SigStoreKeyPair::from_encrypted_pem(&pem, &password()).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a cosign private key that COSIGN_PASSWORD opens: {e}",
                key.display()
            )
        })?;
        let signer = pair
            .to_sigstore_signer(&SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
        Ok(Signer { signer })
    }

    /// Signs `target` as `reference` and stores the signature manifest as
    /// `sha256-<hex>.sig`.
    pub(crate) fn sign(
        &self,
        layout: &Layout,
        target: &Descriptor,
        reference: &str,
    ) -> anyhow::Result<Descriptor> {
        let payload = Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: reference.to_owned(),
                },
                image: Image {
                    docker_manifest_digest: target.digest().to_string(),
                },
                kind: PAYLOAD_TYPE.to_owned(),
            },
            optional: None,
        };
        let payload = serde_json::to_vec(&payload)?;
        let signature = self
            .signer
            .sign(&payload)
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
        let signature = base64::engine::general_purpose::STANDARD.encode(signature);
        store_signature(layout, target, &payload, &signature)
    }
}

/// Stores a signature manifest for `target` holding `payload` and `signature` (base64).
pub(crate) fn store_signature(
    layout: &Layout,
    target: &Descriptor,
    payload: &[u8],
    signature: &str,
) -> anyhow::Result<Descriptor> {
    let layer = layout.put_blob(MediaType::Other(SIMPLE_SIGNING.to_owned()), payload)?;
    let layer = DescriptorBuilder::default()
        .media_type(layer.media_type().clone())
        .digest(layer.digest().clone())
        .size(layer.size())
        .annotations(std::collections::HashMap::from([(
            SIGNATURE_ANNOTATION.to_owned(),
            signature.to_owned(),
        )]))
        .build()?;
    let config = SignatureConfig {
        architecture: "",
        created: ZERO_TIME,
        history: [History { created: ZERO_TIME }],
        os: "",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: vec![oci::sha256(payload).to_string()],
        },
        config: serde_json::Map::new(),
    };
    let config = layout.put_json(MediaType::ImageConfig, &config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer])
        .build()?;
    let descriptor = layout.put_json(MediaType::ImageManifest, &manifest)?;
    layout.set_ref(&format!("{}.sig", tag_of(target)), &descriptor)?;
    Ok(descriptor)
}

/// Every object of a layout that gets a signature: the named image indexes and images, and the
/// SBOM referrers (not the signatures themselves).
pub(crate) fn signable(layout: &Layout) -> anyhow::Result<Vec<(String, Descriptor)>> {
    Ok(layout
        .index()?
        .manifests()
        .iter()
        .filter_map(|d| Some((oci::ref_name(d)?.to_owned(), d.clone())))
        .filter(|(name, _)| !name.ends_with(".sig"))
        .collect())
}

/// `cargo xtask sign`: signs every image, index and SBOM of `binaries` under `out`.
pub(crate) fn run(
    key: &Path,
    binaries: &[&str],
    out: &Path,
    stamp: &crate::stamp::Stamp,
) -> anyhow::Result<()> {
    let signer = Signer::load(key)?;
    for &binary in binaries {
        let layout = Layout::open(&crate::image::layout_dir(out, binary))?;
        let reference = stamp.repository(binary);
        let targets = signable(&layout)?;
        for (_, target) in &targets {
            signer.sign(&layout, target, &reference)?;
        }
        eprintln!(
            "sign: {binary}: {} signatures for {reference}",
            targets.len()
        );
    }
    Ok(())
}

/// A public key that signatures are checked against.
pub(crate) struct Verifier {
    key: CosignVerificationKey,
}

impl Verifier {
    pub(crate) fn load(public: &Path) -> anyhow::Result<Self> {
        let pem =
            std::fs::read(public).with_context(|| format!("cannot read {}", public.display()))?;
        let key = CosignVerificationKey::from_pem(&pem, &SigningScheme::ECDSA_P256_SHA256_ASN1)
            .map_err(|e| anyhow::anyhow!("{} is not a P-256 public key: {e}", public.display()))?;
        Ok(Verifier { key })
    }

    /// Checks that `target` is whole and that a signature by this key names it as `reference`.
    pub(crate) fn verify(
        &self,
        layout: &Layout,
        name: &str,
        target: &Descriptor,
        reference: &str,
    ) -> anyhow::Result<()> {
        check_whole(layout, target).with_context(|| format!("{name} ({})", target.digest()))?;
        let tag = format!("{}.sig", tag_of(target));
        let signatures = layout
            .resolve(&tag)
            .with_context(|| format!("{name} ({}) is not signed", target.digest()))?;
        let manifest = ImageManifest::from_reader(layout.blob(&signatures)?.as_slice())?;
        let mut reasons = Vec::new();
        for layer in manifest.layers() {
            match self.check_signature(layout, layer, target, reference) {
                Ok(()) => return Ok(()),
                Err(why) => reasons.push(why.to_string()),
            }
        }
        anyhow::bail!(
            "{name} ({}): no valid signature: {}",
            target.digest(),
            reasons.join("; ")
        )
    }

    fn check_signature(
        &self,
        layout: &Layout,
        layer: &Descriptor,
        target: &Descriptor,
        reference: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            layer.media_type().as_ref() == SIMPLE_SIGNING,
            "a layer of type {} is not a simple-signing payload",
            layer.media_type()
        );
        let payload = layout.blob(layer)?;
        let signature = layer
            .annotations()
            .as_ref()
            .and_then(|a| a.get(SIGNATURE_ANNOTATION))
            .context("the payload has no signature annotation")?;
        self.key
            .verify_signature(Signature::Base64Encoded(signature.as_bytes()), &payload)
            .map_err(|e| anyhow::anyhow!("the signature does not verify with this key: {e}"))?;
        let payload: Payload =
            serde_json::from_slice(&payload).context("the signed payload is not simple-signing")?;
        anyhow::ensure!(
            payload.critical.kind == PAYLOAD_TYPE,
            "the signed payload's type is {:?}",
            payload.critical.kind
        );
        anyhow::ensure!(
            payload.critical.image.docker_manifest_digest == target.digest().to_string(),
            "the signature is for {}",
            payload.critical.image.docker_manifest_digest
        );
        anyhow::ensure!(
            payload.critical.identity.docker_reference == reference,
            "the signature names {}, not {reference}",
            payload.critical.identity.docker_reference
        );
        Ok(())
    }
}

/// Reads `target` and everything it refers to, checking every digest and size, and for images
/// that each layer's uncompressed digest is the config's diff id.
pub(crate) fn check_whole(layout: &Layout, target: &Descriptor) -> anyhow::Result<()> {
    let bytes = layout.blob(target)?;
    match target.media_type() {
        MediaType::ImageIndex => {
            let index = ImageIndex::from_reader(bytes.as_slice())?;
            for child in index.manifests() {
                check_whole(layout, child)?;
            }
        }
        MediaType::ImageManifest => {
            let manifest = ImageManifest::from_reader(bytes.as_slice())?;
            let config = layout.blob(manifest.config())?;
            if let Some(subject) = manifest.subject() {
                layout.blob(subject).context("the SBOM's subject")?;
            }
            let mut layers = Vec::new();
            for layer in manifest.layers() {
                layers.push((layer, layout.blob(layer)?));
            }
            if manifest.config().media_type() == &MediaType::ImageConfig
                && manifest.artifact_type().is_none()
                && layers
                    .iter()
                    .all(|(l, _)| l.media_type() == &MediaType::ImageLayerGzip)
            {
                let config = ImageConfiguration::from_reader(config.as_slice())?;
                let diff_ids = config.rootfs().diff_ids();
                anyhow::ensure!(
                    diff_ids.len() == layers.len(),
                    "{} layers but {} diff ids",
                    layers.len(),
                    diff_ids.len()
                );
                for ((layer, gz), diff_id) in layers.iter().zip(diff_ids) {
                    let mut tar = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(gz.as_slice()),
                        &mut tar,
                    )
                    .with_context(|| format!("layer {} is not gzip", layer.digest()))?;
                    let actual = oci::sha256(&tar).to_string();
                    anyhow::ensure!(
                        actual == *diff_id,
                        "layer {} unpacks to {actual}, but the config says {diff_id}",
                        layer.digest()
                    );
                }
            }
        }
        other => anyhow::bail!("{} is a {other}, not a manifest or index", target.digest()),
    }
    Ok(())
}

/// `cargo xtask verify`: checks every image, index and SBOM of `binaries` under `out`.
pub(crate) fn verify(
    public: &Path,
    binaries: &[&str],
    out: &Path,
    stamp: &crate::stamp::Stamp,
) -> anyhow::Result<()> {
    let verifier = Verifier::load(public)?;
    for &binary in binaries {
        let layout = Layout::open(&crate::image::layout_dir(out, binary))?;
        let reference = stamp.repository(binary);
        let targets = signable(&layout)?;
        anyhow::ensure!(
            !targets.is_empty(),
            "{} holds nothing to verify",
            layout.root().display()
        );
        for (name, target) in &targets {
            verifier.verify(&layout, name, target, &reference)?;
        }
        let index = layout.resolve(&crate::image::index_tag(stamp))?;
        let index = ImageIndex::from_reader(layout.blob(&index)?.as_slice())?;
        let mut shown = Vec::new();
        for image in index.manifests() {
            shown.push(crate::sbom::check_against_image(&layout, image, binary)?);
        }
        eprintln!(
            "verify: {binary}: {} objects whole and signed by {}; {} SBOMs list every crate their binaries carry ({shown:?} crates seen)",
            targets.len(),
            public.display(),
            shown.len()
        );
    }
    Ok(())
}
