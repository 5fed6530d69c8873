-- The default bundle: what applies to an Operator that has no bundle of its own. Only the
-- platform plugins, with their default configuration.
return {
  name = "default",
  version = "1.0.0",
  operator = "*",
  description = "SGP.02 POL2 rules, default notification routing, ONC filtering",
  on_error = { pol2 = "fail-closed", routing = "fail-open", onc = "fail-open" },
  plugins = { "sgp02-pol2", "notification-router", "onc-filter" },
}
