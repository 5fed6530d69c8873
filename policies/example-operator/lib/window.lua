-- Maintenance windows as UTC hours [start_hour, end_hour), wrapping past midnight.
local Window = {}

--- True when `utc` (m2m.clock.utc()) falls inside the window; no window: always open.
function Window.open(window, utc)
  if window == nil then return true end
  local from, to, hour = window.start_hour, window.end_hour, utc.hour
  if from == to then return true end
  if from < to then return hour >= from and hour < to end
  return hour >= from or hour < to
end

return Window
