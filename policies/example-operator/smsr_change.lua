-- example-operator: SM-SR change (ES4.SMSRChange on the current SM-SR, ES4.PrepareSMSRChange on the
-- new one; hook before_smsr_change, evaluated on both sides) only between SM-SRs the Operator has
-- contracts with: `conf.smsr_allow_list`. Without a list, no opinion.
local m2m = require "m2m"

local S, R = m2m.subject, m2m.reason

local Policy = {}

function Policy.before_smsr_change(ctx, conf)
  local allowed = conf.smsr_allow_list
  if allowed == nil then return nil end
  local args = ctx.operation and ctx.operation.args or {}
  -- The current SM-SR names the target; the new one names the current SM-SR.
  local other = args.target_smsr_id or args.current_smsr_id
  if other ~= nil and not m2m.util.contains(allowed, other) then
    return m2m.deny(S.SMSR, R.NOT_ALLOWED, "SM-SR " .. other .. " is not on the Operator's allow-list")
  end
  return nil
end

return Policy
