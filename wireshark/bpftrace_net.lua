-- bpftrace-net: each hop of a traced packet as Wireshark fields, for files written by
-- `bpftrace-net export`. Every packet record carries a comment line
--   bpftrace-net: packet=12 copy=0 family=ipv4 hook=FORWARD table=filter chain=FORWARD
--                 verdict=DROP in=br-x out=eth0 physin=veth1 physout= rule=... end=DROPPED
-- (values percent-encoded where they hold spaces, '%', '=' or '|'). Wireshark 4.0 hands
-- pcapng custom options to no dissector, so the fields ride in this comment; the same
-- record's custom option (PEN 32473) holds them as JSON for other readers.
--
--   tshark -X lua_script:wireshark/bpftrace_net.lua -r trace.pcapng -Y 'bpftrace_net.verdict == "DROP"'
--
-- Install: copy this file into Wireshark's personal plugin folder
-- (~/.local/lib/wireshark/plugins/ on Linux; Help > About Wireshark > Folders shows it).

local proto = Proto("bpftrace_net", "bpftrace-net hop")

local names = { "family", "hook", "table", "chain", "verdict", "in", "out", "physin", "physout", "rule", "end" }
local fields = {}
for _, name in ipairs(names) do
  fields[name] = ProtoField.string("bpftrace_net." .. name, name)
end
fields.packet = ProtoField.uint64("bpftrace_net.packet", "packet")
fields.copy = ProtoField.uint32("bpftrace_net.copy", "copy")
local list = { fields.packet, fields.copy }
for _, name in ipairs(names) do table.insert(list, fields[name]) end
proto.fields = list

local comment_field = Field.new("frame.comment")

local function unescape(value)
  return (value:gsub("%%(%x%x)", function(hex) return string.char(tonumber(hex, 16)) end))
end

function proto.dissector(tvb, pinfo, tree)
  for _, comment in ipairs({ comment_field() }) do
    local text = tostring(comment.value)
    local body = text:match("^bpftrace%-net: (.*)$")
    if body then
      local subtree = tree:add(proto, "bpftrace-net hop")
      local summary = {}
      for key, value in body:gmatch("([%w_]+)=(%S*)") do
        value = unescape(value)
        if key == "packet" then
          subtree:add(fields.packet, UInt64(tonumber(value) or 0))
        elseif key == "copy" then
          subtree:add(fields.copy, tonumber(value) or 0)
        elseif fields[key] then
          subtree:add(fields[key], value)
          if key == "hook" or key == "table" or key == "verdict" then table.insert(summary, value) end
        end
      end
      subtree:append_text(": " .. table.concat(summary, " "))
    end
  end
end

register_postdissector(proto)
