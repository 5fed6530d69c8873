-- Configuration of sgp02-pol2 (validated by the host before the plugin is loaded).
return {
  fields = {
    { name = "check_authorisation", type = "boolean", default = true,
      description = "refuse callers that do not own the Profile and M2M SPs without a PLMA for the function" },
    { name = "protect_fallback", type = "boolean", default = true,
      description = "the Fall-Back Profile can be neither disabled nor deleted" },
  },
}
