-- Configuration of onc-filter.
return {
  fields = {
    { name = "never_discard", type = "array", elements = "string", default = {},
      description = "notification types sent even when an ONC lists them (platform policy)" },
  },
}
