//! `cargo xtask kustomize`: every Kustomize base and overlay under `manifests/` renders, and
//! so does every overlay with each component that applies to it (the binary's own
//! components and the shared ones), one at a time and all together; every rendered object
//! passes strict offline validation against the Kubernetes schemas; every alert passes its
//! `promtool test rules` unit tests; and every metric an alert or a dashboard queries is one a
//! binary exports. Core objects are validated by `kubernetes-validate` (strict: unknown fields
//! fail); custom resources by `manifests/tests/validate-crds.mjs`, against the validators
//! generated from their projects' published CRD schemas (pinned npm packages).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{find_program, project_root};

mod metric_names;

use metric_names::{check_metric_names, exported_metrics};

/// The Kubernetes versions whose schemas the manifests must satisfy: from the oldest we
/// support (native sidecars need 1.29; `matchConditions` are GA in 1.30) to the newest the
/// validator knows that is released.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0"];

/// A folder with a `kustomization.yaml`, and whether it is a Component.
#[derive(Debug, Clone)]
struct Folder {
    dir: PathBuf,
    component: bool,
}

pub(crate) fn kustomize(sh: &Shell) -> anyhow::Result<()> {
    let manifests = project_root().join("manifests");
    let folders = folders(&manifests)?;
    if folders.is_empty() {
        eprintln!("no kustomization.yaml under manifests/: nothing to build");
        return Ok(());
    }
    if find_program("kubectl").is_none() {
        anyhow::bail!("kubectl is not on PATH, and manifests/ has Kustomize folders to build");
    }
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let mut built = 0;
    let mut renderings = Vec::new();
    for f in folders.iter().filter(|f| !f.component) {
        renderings.push(render(sh, &f.dir, &relative(&f.dir))?);
        built += 1;
    }
    let shared: Vec<&Folder> = folders
        .iter()
        .filter(|f| f.component && f.dir.starts_with(manifests.join("components")))
        .collect();
    for overlay in folders
        .iter()
        .filter(|f| !f.component && is_overlay(&f.dir))
    {
        let binary = overlay
            .dir
            .parent()
            .and_then(Path::parent)
            .context("an overlay lies in <binary>/overlays/<environment>")?;
        let own: Vec<&Folder> = folders
            .iter()
            .filter(|f| f.component && f.dir.starts_with(binary.join("components")))
            .collect();
        let included = included_components(&overlay.dir)?;
        let mut all = Vec::new();
        for component in own.iter().chain(&shared) {
            if included.contains(&component.dir) {
                continue;
            }
            let combo = combine(scratch.path(), built, &overlay.dir, &[&component.dir])?;
            let name = format!("{} + {}", relative(&overlay.dir), relative(&component.dir));
            renderings.push(render(sh, &combo, &name)?);
            built += 1;
            // The shared components are alternatives (policy-controller or Kyverno); the
            // binary's own are meant to go together.
            if own.iter().any(|o| o.dir == component.dir) {
                all.push(component.dir.as_path());
            }
        }
        let combo = combine(scratch.path(), built, &overlay.dir, &all)?;
        renderings.push(render(
            sh,
            &combo,
            &format!("{} + all its components", relative(&overlay.dir)),
        )?);
        built += 1;
    }
    // Production runs our images by digest only: every container image, and the sidecar image
    // the webhook injects (its environment). Checked on the production overlays as shipped: a
    // component adding a workload (the archiver's manual-run) is pinned only when listed
    // before release-images, which a combination made outside the overlay cannot show.
    for (name, rendered) in &renderings {
        if name.ends_with("/overlays/production") {
            unpinned(rendered).with_context(|| format!("in {name}"))?;
        }
    }
    // One validator run over every rendering (each starts an interpreter); only when that
    // fails, one run per rendering, to name the one at fault.
    let all: String = renderings
        .iter()
        .map(|(_, r)| format!("---\n{r}\n"))
        .collect();
    if let Err(together) = validate(sh, &all) {
        for (name, rendered) in &renderings {
            validate(sh, rendered).with_context(|| format!("in {name}"))?;
        }
        return Err(together.context("the renderings fail together, though each passes alone"));
    }
    eprintln!("built and validated {built} Kustomize renderings");
    alert_tests(sh, &folders, scratch.path())?;
    let exported = exported_metrics(project_root())?;
    let problems = check_metric_names(&manifests, &exported)?;
    if !problems.is_empty() {
        anyhow::bail!(
            "alerts or dashboards query metrics no binary exports:\n{}",
            problems.join("\n")
        );
    }
    eprintln!(
        "every metric the alerts and dashboards query is exported ({} names known)",
        exported.len()
    );
    Ok(())
}

/// The components `overlay`'s kustomization already lists, as canonical paths.
fn included_components(overlay: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let path = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let doc: serde_json::Value =
        serde_saphyr::from_str(&text).with_context(|| format!("{} is not YAML", path.display()))?;
    let mut out = Vec::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        let rel = c.as_str().context("a component is a path")?;
        let dir = overlay.join(rel);
        out.push(
            dir.canonicalize()
                .with_context(|| format!("{}: no component {rel}", path.display()))?,
        );
    }
    Ok(out)
}

fn relative(dir: &Path) -> String {
    dir.strip_prefix(project_root())
        .unwrap_or(dir)
        .display()
        .to_string()
}

fn is_overlay(dir: &Path) -> bool {
    dir.parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "overlays")
}

/// A kustomization in `scratch` (numbered `n`) rendering `overlay` with `components`.
fn combine(
    scratch: &Path,
    n: usize,
    overlay: &Path,
    components: &[&Path],
) -> anyhow::Result<PathBuf> {
    let dir = scratch.join(format!("combo-{n}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Kustomize takes only relative paths to other kustomizations.
    let up = "../".repeat(dir.components().count().saturating_sub(1));
    let from_here = |p: &Path| format!("{up}{}", p.strip_prefix("/").unwrap_or(p).display());
    let mut text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\n",
        from_here(overlay)
    );
    if !components.is_empty() {
        text.push_str("components:\n");
        for c in components {
            text.push_str(&format!("  - {}\n", from_here(c)));
        }
    }
    let path = dir.join("kustomization.yaml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(dir)
}

/// Fails when `rendered` names one of our images by tag, rather than by digest, as a
/// container's `image` or in a container's environment (where the webhook takes the sidecar
/// image it injects). The webhook's config text may still hold the tag: the environment wins.
fn unpinned(rendered: &str) -> anyhow::Result<()> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(rendered).context("the rendering is not YAML")?;
    let mut found = Vec::new();
    for doc in &docs {
        container_images(doc, &mut found);
    }
    match found
        .iter()
        .find(|v| v.starts_with("ghcr.io/bulwark-k8s/") && !v.contains("@sha256:"))
    {
        Some(v) => anyhow::bail!("{v} is not pinned by digest"),
        None => Ok(()),
    }
}

/// Every container image and env value under `v`.
fn container_images(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                if matches!(key.as_str(), "containers" | "initContainers") {
                    for c in value.as_array().into_iter().flatten() {
                        out.extend(c["image"].as_str().map(str::to_owned));
                        for e in c["env"].as_array().into_iter().flatten() {
                            out.extend(e["value"].as_str().map(str::to_owned));
                        }
                    }
                } else {
                    container_images(value, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| container_images(i, out)),
        _ => {}
    }
}

/// `dir` rendered by kustomize, with `name` for messages.
fn render(sh: &Shell, dir: &Path, name: &str) -> anyhow::Result<(String, String)> {
    let rendered = cmd!(sh, "kubectl kustomize {dir}")
        .quiet()
        .read()
        .with_context(|| format!("kustomize cannot build {name}"))?;
    Ok((name.to_owned(), rendered))
}

/// Validates rendered objects: the core ones strictly against the Kubernetes schemas
/// (unknown fields fail), the custom resources against their projects' published schemas.
fn validate(sh: &Shell, rendered: &str) -> anyhow::Result<()> {
    for version in KUBERNETES_VERSIONS {
        cmd!(
            sh,
            "kubernetes-validate --strict --quiet --no-warn -k {version} -"
        )
        .quiet()
        .stdin(rendered)
        .run()
        .with_context(|| format!("does not validate against Kubernetes {version}"))?;
    }
    let npm = crate::prereqs::npm_dir(&crate::home_dir()?);
    let script = project_root().join("manifests/tests/validate-crds.mjs");
    cmd!(sh, "node {script} {npm}")
        .quiet()
        .ignore_stdout()
        .stdin(rendered)
        .run()
        .context("a custom resource does not match its schema")
}

/// Every folder under `dir` (itself included) that holds a Kustomization or a Component.
fn folders(dir: &Path) -> anyhow::Result<Vec<Folder>> {
    let mut res = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list {}", dir.display()))?
                .path();
            if path.is_dir() {
                todo.push(path);
            } else if path.file_name().is_some_and(|n| n == "kustomization.yaml") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let component = text.lines().any(|l| l.trim() == "kind: Component");
                res.push(Folder {
                    dir: dir.clone(),
                    component,
                });
            }
        }
    }
    res.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(res)
}

/// Runs `promtool test rules` on every `components/alerts/tests/*.test.yaml`, against the
/// rule groups of the PrometheusRule beside it (its `spec`, written where the tests name it).
fn alert_tests(sh: &Shell, folders: &[Folder], scratch: &Path) -> anyhow::Result<()> {
    let mut tested = 0;
    for f in folders
        .iter()
        .filter(|f| f.dir.ends_with("components/alerts"))
    {
        let rule = f.dir.join("prometheusrule.yaml");
        let text = std::fs::read_to_string(&rule)
            .with_context(|| format!("cannot read {}", rule.display()))?;
        let doc: serde_json::Value = serde_saphyr::from_str(&text)
            .with_context(|| format!("{} is not YAML", rule.display()))?;
        let dir = scratch.join(format!("alerts-{tested}"));
        std::fs::create_dir_all(dir.join("tests"))?;
        std::fs::write(
            dir.join("prometheusrule.rules.yaml"),
            serde_json::to_string_pretty(&doc["spec"])?,
        )?;
        let tests = f.dir.join("tests");
        let mut names = BTreeSet::new();
        for entry in std::fs::read_dir(&tests)
            .with_context(|| format!("{} has no tests/", relative(&f.dir)))?
        {
            let path = entry?.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && name.ends_with(".test.yaml")
            {
                std::fs::copy(&path, dir.join("tests").join(name))?;
                names.insert(format!("tests/{name}"));
            }
        }
        anyhow::ensure!(!names.is_empty(), "{} has no *.test.yaml", relative(&tests));
        let _cd = sh.push_dir(&dir);
        cmd!(sh, "promtool test rules {names...}")
            .quiet()
            .run()
            .with_context(|| format!("the alert tests of {} fail", relative(&f.dir)))?;
        tested += 1;
    }
    eprintln!("promtool: the alert tests of {tested} components pass");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_pins_our_images() {
        let pod = |image: &str, env: &str| {
            format!(
                "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: a\n          image: {image}\n          env:\n            - name: X\n              value: {env}\n---\nkind: ConfigMap\ndata:\n  config.yaml: |\n    image: ghcr.io/bulwark-k8s/injector-sidecar:0.1.0\n"
            )
        };
        let digest = "@sha256:00";
        let pinned = pod(
            &format!("ghcr.io/bulwark-k8s/sentinel{digest}"),
            &format!("ghcr.io/bulwark-k8s/injector-sidecar{digest}"),
        );
        assert!(unpinned(&pinned).is_ok(), "a config's text is not an image");
        let e = unpinned(&pod("ghcr.io/bulwark-k8s/sentinel:0.1.0", "x")).unwrap_err();
        assert!(e.to_string().contains("sentinel:0.1.0"), "{e}");
        let e = unpinned(&pod(
            "registry.k8s.io/pause:3.10",
            "ghcr.io/bulwark-k8s/injector-sidecar:0.1.0",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("injector-sidecar:0.1.0"), "{e}");
    }

    #[test]
    fn folders_are_found_at_any_depth_and_components_told_apart() {
        let root = tempfile::tempdir().unwrap();
        for (dir, text) in [
            ("sentinel/base", "kind: Kustomization\n"),
            ("sentinel/overlays/production", "kind: Kustomization\n"),
            ("sentinel/components/alerts", "# x\nkind: Component\n"),
            ("empty", ""),
        ] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
            if !text.is_empty() {
                std::fs::write(root.path().join(dir).join("kustomization.yaml"), text).unwrap();
            }
        }
        let found: Vec<(String, bool)> = folders(root.path())
            .unwrap()
            .into_iter()
            .map(|f| {
                let rel = f
                    .dir
                    .strip_prefix(root.path())
                    .unwrap()
                    .display()
                    .to_string();
                (rel, f.component)
            })
            .collect();
        assert_eq!(
            found,
            [
                ("sentinel/base".to_owned(), false),
                ("sentinel/components/alerts".to_owned(), true),
                ("sentinel/overlays/production".to_owned(), false),
            ]
        );
        assert!(is_overlay(
            &root.path().join("sentinel/overlays/production")
        ));
        assert!(!is_overlay(&root.path().join("sentinel/base")));
    }
}
