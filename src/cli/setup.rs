//! Set-up commands for QA scripts: `games`, `goals`, `map-tag`, `enable` / `disable`,
//! `set-triggers`. Thin over [`crate::setup::Setup`]; JSON on stdout, errors on stderr (exit 2
//! for input to fix, 1 otherwise).

use super::Workspace;
use std::process::ExitCode;
use std::sync::Arc;

use serde_json::{json, Value};

use super::open;
use crate::model::{ApiError, TriggerRule};
use crate::setup::{GoalInput, Setup, SetupError, TagInput};
use crate::store::Store;

#[derive(clap::Subcommand, Debug)]
pub enum GamesCommand {
    /// List the games (the current one is marked)
    List,
    /// Create a game
    Create {
        name: String,
        /// ISO 3166-1 alpha-2 code (US, GB …) of the country that phone numbers written
        /// without a country code (+ or 00) are read in; without it they are not sent
        #[arg(long)]
        default_country: Option<String>,
    },
    /// Rename a game
    Rename { id: i64, name: String },
    /// Delete a game with its configs, goals, queued events and log (asks for --yes)
    Delete {
        id: i64,
        #[arg(long)]
        yes: bool,
    },
    /// Make a game the current one (the window opens on it; commands default to it)
    Use { id: i64 },
    /// Set the country that the game's phone numbers written without a country code (+ or 00)
    /// are read in (ISO 3166-1 alpha-2: US, GB …), or --clear it (such numbers are then not sent)
    DefaultCountry {
        id: i64,
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        country: Option<String>,
        #[arg(long)]
        clear: bool,
    },
}

#[derive(clap::Args, Debug, Default)]
pub struct GoalFields {
    #[arg(long)]
    pub name: Option<String>,
    /// game_launch, purchase or a custom event name
    #[arg(long)]
    pub event: Option<String>,
    /// Count only each player's first matching event
    #[arg(long, conflicts_with = "every_time")]
    pub once_per_player: bool,
    /// Count every matching event (the default)
    #[arg(long)]
    pub every_time: bool,
    /// Value filter: only events worth at least this much …
    #[arg(long)]
    pub min_value: Option<String>,
    /// … in this currency (events in other currencies do not count)
    #[arg(long)]
    pub currency: Option<String>,
    /// Remove the value filter
    #[arg(long, conflicts_with_all = ["min_value", "currency"])]
    pub no_value_filter: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum GoalsCommand {
    /// List the game's goals in their order
    List,
    /// Add a goal (active)
    Add(GoalFields),
    /// Change a goal; unnamed fields keep their value
    Edit {
        key: String,
        #[command(flatten)]
        fields: GoalFields,
    },
    Activate {
        key: String,
    },
    Deactivate {
        key: String,
    },
    Delete {
        key: String,
    },
    /// Put the goals in this order (every goal key once)
    Order {
        keys: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
pub struct GoalsArgs {
    /// Game id (default: the current game)
    #[arg(long, global = true)]
    pub game: Option<i64>,
    #[command(subcommand)]
    pub command: GoalsCommand,
}

#[derive(clap::Args, Debug)]
pub struct MapTagArgs {
    /// The X config
    #[arg(long)]
    pub config: i64,
    /// The goal's key (`postback goals list`)
    #[arg(long)]
    pub goal: String,
    /// Its Single Event Tag id, tw-xxxxx-yyyyy
    #[arg(long, required_unless_present = "clear")]
    pub tag: Option<String>,
    /// Remove the goal's tag (it is then not sent to X)
    #[arg(long)]
    pub clear: bool,
}

fn print(result: Result<Value, SetupError>) -> ExitCode {
    match result {
        Ok(doc) => {
            println!("{doc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let input = matches!(e, SetupError::Input(_) | SetupError::DemoGame | SetupError::Conflict(_));
            let api = ApiError::from(e);
            eprintln!("{}", json!({"error": {"code": api.code, "field": api.field, "message": api.message}}));
            if input || api.code == "game_exists" || api.code == "not_found" {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn setup(workspace: &Workspace) -> Result<(Store, Setup, i64), SetupError> {
    let (store, current) =
        open(workspace).await.map_err(|e| SetupError::Store(crate::store::StoreError::Corrupt(e)))?;
    let setup = Setup::new(store.clone(), Arc::new(workspace.credentials(&store).await?));
    Ok((store, setup, current.id))
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

pub async fn games(workspace: &Workspace, command: GamesCommand) -> ExitCode {
    let result = async {
        let (store, setup, current) = setup(workspace).await?;
        let doc = match command {
            GamesCommand::List => {
                let games = store.games().await?;
                json!(games
                    .iter()
                    .map(|g| {
                        json!({"id": g.id, "name": g.name, "demo": g.demo, "default_country": g.default_country,
                            "current": g.id == current})
                    })
                    .collect::<Vec<_>>())
            }
            GamesCommand::Create { name, default_country } => {
                to_json(&setup.create_game_with_country(&name, default_country.as_deref().unwrap_or_default()).await?)
            }
            GamesCommand::Rename { id, name } => to_json(&setup.rename_game(id, &name).await?),
            GamesCommand::Delete { id, yes } => {
                let usage = store.game_usage(id).await?;
                if !yes {
                    return Err(SetupError::Conflict(format!(
                        "deleting '{}' removes {} configs, {} goals, {} queued conversions and {} log rows; run again with --yes",
                        usage.game.name, usage.configs, usage.goals, usage.queued, usage.log_rows
                    )));
                }
                to_json(&setup.delete_game(id).await?)
            }
            GamesCommand::Use { id } => to_json(&store.set_current_game(id).await?),
            GamesCommand::DefaultCountry { id, country, clear } => {
                let country = if clear { String::new() } else { country.unwrap_or_default() };
                to_json(&setup.set_default_country(id, &country).await?)
            }
        };
        store.close().await;
        Ok(doc)
    };
    print(result.await)
}

fn goal_input(fields: &GoalFields, base: GoalInput) -> GoalInput {
    let rule = if fields.once_per_player {
        TriggerRule::OncePerPlayer
    } else if fields.every_time {
        TriggerRule::EveryTime
    } else {
        base.rule
    };
    let (min_value, currency) = if fields.no_value_filter {
        (None, None)
    } else {
        (fields.min_value.clone().or(base.min_value), fields.currency.clone().or(base.currency))
    };
    GoalInput {
        key: base.key,
        name: fields.name.clone().unwrap_or(base.name),
        event: fields.event.clone().unwrap_or(base.event),
        rule,
        min_value,
        currency,
        active: base.active,
    }
}

pub async fn goals(workspace: &Workspace, args: GoalsArgs) -> ExitCode {
    let result = async {
        let (store, setup, current) = setup(workspace).await?;
        let game_id = args.game.unwrap_or(current);
        let doc = match args.command {
            GoalsCommand::List => to_json(&store.goals(game_id).await?),
            GoalsCommand::Add(fields) => to_json(
                &setup
                    .save_goal(game_id, &goal_input(&fields, GoalInput { active: true, ..GoalInput::default() }))
                    .await?,
            ),
            GoalsCommand::Edit { key, fields } => {
                let goal = store
                    .goals(game_id)
                    .await?
                    .into_iter()
                    .find(|g| g.id == key)
                    .ok_or_else(|| crate::store::StoreError::GoalNotFound(key.clone()))?;
                let base = GoalInput {
                    key: Some(goal.id),
                    name: goal.name,
                    event: goal.event,
                    rule: goal.rule,
                    min_value: goal.value_filter.as_ref().map(|f| f.min_value.clone()),
                    currency: goal.value_filter.map(|f| f.currency),
                    active: goal.active,
                };
                to_json(&setup.save_goal(game_id, &goal_input(&fields, base)).await?)
            }
            GoalsCommand::Activate { key } => {
                store.set_goal_active(game_id, &key, true).await?;
                json!({"goal": key, "active": true})
            }
            GoalsCommand::Deactivate { key } => {
                store.set_goal_active(game_id, &key, false).await?;
                json!({"goal": key, "active": false})
            }
            GoalsCommand::Delete { key } => {
                store.delete_goal(game_id, &key).await?;
                json!({"deleted": key})
            }
            GoalsCommand::Order { keys } => to_json(&setup.reorder_goals(game_id, &keys).await?),
        };
        store.close().await;
        Ok(doc)
    };
    print(result.await)
}

pub async fn map_tag(workspace: &Workspace, args: MapTagArgs) -> ExitCode {
    let result = async {
        let (store, setup, _) = setup(workspace).await?;
        let tag = if args.clear { String::new() } else { args.tag.unwrap_or_default() };
        let checks = setup.save_tags(args.config, &[TagInput { goal_key: args.goal, tag }]).await;
        store.close().await;
        Ok(to_json(&checks?))
    };
    print(result.await)
}

pub async fn set_enabled(workspace: &Workspace, config_id: i64, enabled: bool) -> ExitCode {
    let result = async {
        let (store, _, _) = setup(workspace).await?;
        let done = store.set_enabled(config_id, enabled).await;
        store.close().await;
        done?;
        Ok(json!({"config_id": config_id, "enabled": enabled}))
    };
    print(result.await)
}

pub async fn set_triggers(workspace: &Workspace, config_id: i64, events: Vec<String>) -> ExitCode {
    let result = async {
        let (store, setup, _) = setup(workspace).await?;
        let triggers = setup.set_trigger_events(config_id, &events).await;
        store.close().await;
        Ok(json!({"config_id": config_id, "trigger_events": triggers?}))
    };
    print(result.await)
}
