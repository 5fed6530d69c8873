-- An example operator bundle: the platform plugins, then this Operator's own rules.
-- The manifest is Lua (a table): no TOML/YAML parser is needed (docs/policy.md).
return {
  name = "example-operator",
  version = "1.0.0",
  operator = "1.3.6.1.4.1.47800.10",
  description = "Maintenance window for M2M SPs, blocked SPs, protected Profile Types, audit copies",
  on_error = { pol2 = "fail-closed", routing = "fail-open", onc = "fail-open" },
  plugins = {
    { name = "sgp02-pol2" },
    { name = "notification-router", conf = { retry = { ProfileDownloaded = "best_effort" } } },
    { name = "onc-filter", conf = { never_discard = { "SMSRChange" } } },
  },
  policies = { "pol2.lua", "routing.lua", "onc.lua", "smsr_change.lua" },
  -- `conf` of the policy files below
  conf = {
    maintenance = { start_hour = 1, end_hour = 5 },  -- UTC; M2M SP lifecycle requests only then
    blocked_m2m_sps = { "1.3.6.1.4.1.47800.29" },
    protected_profile_types = { "EMERGENCY_ONLY" },
    download_profile_types = { "M2M_DEFAULT", "M2M_LTE", "TEST_LAB" },
    audit_sp = "1.3.6.1.4.1.47800.28",
    smsr_allow_list = { "1.3.6.1.4.1.47800.40", "1.3.6.1.4.1.47800.41" },  -- SM-SRs this Operator has contracts with
  },
}
