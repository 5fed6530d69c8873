-- Configuration of notification-router.
return {
  fields = {
    { name = "owner_via", type = "string", default = "auto", one_of = { "auto", "ES2", "ES4" },
      description = "how the owner Operator is reached: auto = ES2 through the Profile's SM-DP when it has one, else ES4" },
    { name = "operators", type = "map", values = "string", default = {}, one_of = { "auto", "ES2", "ES4" },
      description = "per-Operator override of owner_via, by Operator OID" },
    { name = "notify_requester", type = "boolean", default = false,
      description = "also notify the party whose own request caused the notification" },
    { name = "critical", type = "array", elements = "string", default = { "SMSRChange", "ProfileDeleted" },
      description = "notification types retried until delivered" },
    { name = "retry", type = "map", values = "string", default = {},
      one_of = { "critical", "standard", "best_effort", "none" },
      description = "retry class by notification type, overriding 'critical'" },
    { name = "m2msp_retry", type = "string", default = "standard",
      one_of = { "critical", "standard", "best_effort", "none" },
      description = "retry class of M2M SP destinations" },
  },
}
