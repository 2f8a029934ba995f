//! The workload identity the keeper containers need to fetch a KSM configuration from a cloud
//! store: the environment and the projected token that an identity webhook (EKS's
//! pod-identity-webhook for IRSA, EKS Pod Identity, Azure Workload Identity's) put into the
//! application's containers.
//!
//! Those webhooks mutate every container of the pod when they run. When they run after us
//! they reach our containers too; when they ran before us (admission calls webhooks in name
//! order), our containers would lack the identity, so we copy it from the first application
//! container that has it: the variables' values, and the token volume's mount. GKE Workload
//! Identity needs nothing: the metadata server answers for the pod's service account.

use bulwark_sidecar_spec::Auth;

use crate::pod::PodSpec;

/// What the keeper containers get of the application's workload identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// Variables and their values.
    pub env: Vec<(&'static str, String)>,
    /// Token volumes and where they are mounted.
    pub mounts: Vec<(&'static str, String)>,
}

/// The variables the AWS identities set (IRSA, then EKS Pod Identity) and the SDKs read.
const AWS: [&str; 8] = [
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_SESSION_NAME",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];
/// The variables Azure Workload Identity's webhook sets.
const AZURE: [&str; 4] = [
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
];
/// The variables whose presence says a container has the identity.
const MARKERS: [&str; 3] = [
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AZURE_FEDERATED_TOKEN_FILE",
];
/// The projected token volumes the webhooks add.
const TOKEN_VOLUMES: [&str; 3] = [
    "aws-iam-token",
    "eks-pod-identity-token",
    "azure-identity-token",
];

/// The identity for `auth`, from the first container (init containers included) of `spec`
/// that carries it; empty when none does (an identity webhook may still add it after us).
pub(crate) fn identity(spec: &PodSpec<'_>, auth: &Auth) -> Identity {
    let names: &[&'static str] = match auth {
        Auth::AwsSecretsManager { .. } => &AWS,
        Auth::AzureKeyVault { .. } => &AZURE,
        Auth::Secret | Auth::GcpSecretManager { .. } => return Identity::default(),
    };
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for container in containers {
        let env: Vec<(&'static str, String)> = container
            .env
            .iter()
            .flatten()
            .filter_map(|var| {
                let name = names.iter().find(|n| **n == var.name)?;
                Some((*name, var.value.as_deref()?.to_owned()))
            })
            .collect();
        if !env.iter().any(|(name, _)| MARKERS.contains(name)) {
            continue;
        }
        let mounts = container
            .volume_mounts
            .iter()
            .flatten()
            .filter_map(|mount| {
                let name = TOKEN_VOLUMES.iter().find(|n| **n == mount.name)?;
                Some((*name, mount.mount_path.to_string()))
            })
            .collect();
        return Identity { env, mounts };
    }
    Identity::default()
}

/// The admission warning for a cloud method whose identity no container carries yet: it works
/// only if an identity webhook adds it after us.
pub(crate) fn missing(auth: &Auth, identity: &Identity) -> Option<&'static str> {
    if !identity.env.is_empty() {
        return None;
    }
    match auth {
        Auth::AwsSecretsManager { .. } => Some(
            "keeper.security/auth-method aws-secrets-manager: no container has AWS_ROLE_ARN or AWS_CONTAINER_CREDENTIALS_FULL_URI yet; the keeper containers need the EKS pod identity webhook to add them (annotate the service account with eks.amazonaws.com/role-arn, or associate it with an EKS Pod Identity)",
        ),
        Auth::AzureKeyVault { .. } => Some(
            "keeper.security/auth-method azure-key-vault: no container has AZURE_FEDERATED_TOKEN_FILE yet; the keeper containers need Azure Workload Identity's webhook to add it (label the pod azure.workload.identity/use: \"true\")",
        ),
        Auth::Secret | Auth::GcpSecretManager { .. } => None,
    }
}
