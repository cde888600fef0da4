//! The example configuration in `examples/exposure.toml` is complete and valid: it loads, every
//! section reaches the validated configuration, and its defaults are the parser's own.

use super::repo;
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::format::Format;

#[test]
fn the_example_configuration_loads_and_validates() {
    let path = repo("examples/exposure.toml");
    let config = Config::load(Some(&path), &DetectOverrides::default(), None)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(config.input.format, Format::Auto);
    assert_eq!(config.sinks.len(), 4, "one example per sink kind");
    assert_eq!(config.detector.policies.rules.len(), 2);
    // The decoder the pipeline builds from it works.
    assert_eq!(config.decoder().format(), Format::Auto);
}

#[test]
fn the_example_shows_the_defaults_of_detect_and_input() {
    let example = ConfigFile::load(&repo("examples/exposure.toml")).unwrap();
    let default = ConfigFile::default();
    let flags = DetectOverrides::default();
    let (mine, theirs) = (
        Config::build(example, &flags, None).unwrap(),
        Config::build(default, &flags, None).unwrap(),
    );
    let thresholds = |c: &Config| c.detector.policies.default.thresholds;
    assert_eq!(thresholds(&mine), thresholds(&theirs));
    assert_eq!(mine.detector.lateness, theirs.detector.lateness);
    assert_eq!(mine.input.max_line_bytes, theirs.input.max_line_bytes);
    assert_eq!(mine.input.fields, theirs.input.fields);
    assert_eq!(mine.check, theirs.check);
}
