//! `citydb serve`: listen first (so /readyz explains the start-up), open the node, reload the
//! principals on change, seed the demo data when asked, and serve until a shutdown signal.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::demo;
use crate::out::say;
use citydb_api::{AuthConfig, Node, NodeOptions};
use citydb_store::{Store, StoreConfig};

/// What `serve` publishes with (the CLI's `--signing-key`, `--witness`,
/// `--checkpoint-interval`).
pub struct Publish {
    pub signing_key: Option<PathBuf>,
    pub witnesses: Vec<citydb_api::witnesses::WitnessConfig>,
    pub interval: std::time::Duration,
}

async fn open_node(mut options: NodeOptions, store: &Store) -> anyhow::Result<Node> {
    let dir = options.data_dir.clone();
    let opened = citydb_store::open(store, &dir, &StoreConfig::default())
        .await
        .with_context(|| format!("cannot open the data directory {}", dir.display()))?;
    options.publish.trees = Some(citydb_api::published::Trees {
        events: opened.tree,
        access: opened.access_tree,
    });
    Node::open(opened.log, opened.access, opened.probe, options)
        .await
        .with_context(|| format!("cannot open the data directory {}", dir.display()))
}

/// How often `serve --config FILE` looks at the file for changes (it also reloads on SIGHUP).
const PRINCIPALS_POLL: std::time::Duration = std::time::Duration::from_secs(2);

#[allow(clippy::too_many_arguments)]
pub async fn run(
    data: PathBuf,
    store: Store,
    listen: String,
    metrics_listen: Option<String>,
    config: Option<PathBuf>,
    demo: bool,
    admission: citydb_api::PrincipalLimits,
    publish: Publish,
    citizen_token_key: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    // Citizen tokens: the key given, or the demo's; revocations kept beside the key.
    let citizen_tokens = match (&citizen_token_key, demo) {
        (Some(path), _) => Some((citydb_api::CitizenTokenKey::load(path)?, path.clone())),
        (None, true) => Some((
            demo::citizen_token_key(&data)?,
            data.join(demo::CITIZEN_TOKEN_KEY_FILE),
        )),
        (None, false) => None,
    }
    .map(|(key, path)| {
        let mut revocations = path.into_os_string();
        revocations.push(".revocations.json");
        citydb_api::CitizenTokens::new(key, Some(revocations.into())).map(std::sync::Arc::new)
    })
    .transpose()?;
    let signer = match (&publish.signing_key, demo) {
        (Some(path), _) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .and_then(|text| {
                    citydb_tlog::SignerKey::parse(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                })?,
        ),
        (None, true) => Some(demo::signing_key(&data)?),
        (None, false) => None,
    };
    let principals_file = config.clone();
    let (auth, tokens) = match (config, demo) {
        (Some(path), _) => (
            AuthConfig::load(&path).with_context(|| format!("cannot load {}", path.display()))?,
            None,
        ),
        (None, true) => {
            let (auth, tokens) = demo::principals(&data)?;
            (auth, Some(tokens))
        }
        (None, false) => {
            anyhow::bail!("no principals: pass --config FILE (see `citydb token`), or --demo")
        }
    };
    if auth.principals.is_empty() {
        anyhow::bail!("the configuration names no principal: every request would be refused");
    }
    let mut options = NodeOptions::new(&data, auth);
    options.expose_metrics = metrics_listen.is_none();
    options.server_limits.per_principal = admission;
    options.publish.signer = signer.map(std::sync::Arc::new);
    options.publish.witnesses = publish.witnesses;
    options.publish.interval = publish.interval;
    options.citizen_tokens = citizen_tokens.clone();
    // Listen before any long start-up work (opening the data directory checks the
    // projections file; --demo loads data): a client then gets 503 and the reason from
    // /readyz instead of "connection refused".
    let opening = citydb_api::startup::Opening::new("opening the data directory");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(citydb_api::serve(
        listener,
        opening.router(),
        citydb_api::shutdown_signal(),
    ));
    say!(
        "citydb serving {} on http://{addr}/graphql (GraphiQL: http://{addr}/graphiql)",
        data.display()
    );
    let node = open_node(options, &store).await?;
    // A leaked token is revoked by editing the file: no restart.
    let _reload = principals_file
        .map(|path| citydb_api::reload::spawn_reload(node.authenticator(), path, PRINCIPALS_POLL));
    let seeding = tokens
        .as_ref()
        .map(|_| node.hold_readiness("loading the demo data"));
    opening.open(node.router());
    let metrics_server = match &metrics_listen {
        Some(metrics_addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr}"))?;
            let bound = metrics_listener.local_addr()?;
            say!("citydb metrics on http://{bound}/metrics");
            let router = node.metrics_router();
            Some(tokio::spawn(async move {
                citydb_api::serve(metrics_listener, router, citydb_api::shutdown_signal()).await
            }))
        }
        None => None,
    };
    tracing::info!(%addr, data = %data.display(), "serving");
    if let Some(mut tokens) = tokens {
        demo::seed(&node).await?;
        if let Some(citizen_tokens) = &citizen_tokens {
            demo::citizen_token(&node, citizen_tokens, &data, &mut tokens).await?;
        }
        drop(seeding);
        demo::print_tour(&addr.to_string(), &data, &tokens);
    }
    server
        .await
        .context("the server task failed")?
        .context("the server failed")?;
    if let Some(task) = metrics_server {
        task.abort();
    }
    say!("citydb stopped");
    Ok(ExitCode::SUCCESS)
}
