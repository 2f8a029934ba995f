//! A progress bar per table on an interactive terminal (standard error), through `indicatif`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bulwark_archive::config::Target;
use bulwark_archive::pipeline::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The bars of the tables of a run, one per table, made when a table first reports.
#[derive(Debug, Default)]
pub(crate) struct Bars {
    all: MultiProgress,
    tables: Mutex<HashMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn advance(&self, target: &Target, done: u64, total: u64) {
        let name = format!("{} {}.{}", target.database, target.schema, target.table);
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let bar = tables.entry(name.clone()).or_insert_with(|| {
            let bar = self.all.add(ProgressBar::new(total));
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent:>3}% {pos}/{len} rows {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("#>.");
            bar.set_style(style);
            bar.set_prefix(name);
            bar
        });
        bar.set_length(total.max(done));
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    }
}
