/**
 * Server-side Lua for the compact snapshot. One script call reads a whole SCAN page and the TTL
 * (and risk score) of every listed key on it, inside Redis: measured, this costs a fraction of
 * the command time of a SCAN page followed by one PTTL command per key, and one round trip.
 *
 * Entry encoding (all lengths are byte counts in decimal, so any key bytes survive):
 *   <kind><idLen>:<id><expiresAtMs>;                     kind s|i|c (suspended, blocked ip, cidr)
 *   r<idLen>:<id><expiresAtMs>,<scoreLen>:<score>;       user_risk
 * expiresAtMs is the absolute server time (ms) of expiry, -1 for none: read with PEXPIRETIME
 * (Redis 7), so an unchanged key reads the same in every snapshot and snapshots can be compared
 * bucket by bucket (snapshot-chunks.ts). Where PEXPIRETIME is refused (Redis 6.2, or an ACL
 * without it) it is TIME + PTTL, off by a millisecond or two, and the page says it is not exact.
 */

/**
 * ARGV: cursor, count, key prefix, MATCH pattern ('' = none), '1' to try PEXPIRETIME. Returns
 * {nextCursor, serverNowUs, entries, exact ('1' when every expiry came from PEXPIRETIME)}.
 */
export const SCAN_STEP = `
local r
if ARGV[4] ~= '' then r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[4], 'COUNT', ARGV[2])
else r = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local prefix = ARGV[3]
local plen = #prefix
local fams = {'suspended_user:', 'blocked_ip:', 'blocked_cidr:', 'user_risk:'}
local codes = {'s', 'i', 'c', 'r'}
local out = {}
local exact = ARGV[5] == '1'
for _, k in ipairs(r[2]) do
  if string.sub(k, 1, plen) == prefix then
    for f = 1, 4 do
      local fam = fams[f]
      local flen = #fam
      if #k > plen + flen and string.sub(k, plen + 1, plen + flen) == fam then
        local id = string.sub(k, plen + flen + 1)
        local exp = -2
        if exact then
          exp = redis.pcall('PEXPIRETIME', k)
          if type(exp) == 'table' then exact = false end
        end
        if not exact then
          exp = redis.call('PTTL', k)
          if exp >= 0 then exp = now + exp end
        end
        if exp ~= -2 then
          local head = codes[f] .. #id .. ':' .. id .. string.format('%d', exp)
          if f == 4 then
            local ty = redis.call('TYPE', k)['ok']
            local score
            if ty == 'hash' then score = redis.call('HGET', k, 'score')
            elseif ty == 'string' then score = redis.call('GET', k)
            else score = 'unreadable' end
            if score then out[#out + 1] = head .. ',' .. #score .. ':' .. score .. ';' end
          else
            out[#out + 1] = head .. ';'
          end
        end
        break
      end
    end
  end
end
return {r[1], string.format('%.0f', nowUs), table.concat(out), exact and '1' or '0'}
`;

/**
 * KEYS: meta, lease, arrival, log watermark. ARGV: after (server µs, '' = now: a resync's first
 * poll), lease id, lease ms, '1' to accept a logged catch-up. A first poll also records its time
 * under the arrival key, so the snapshot's keeper knows when to advance its watermark.
 * Returns {state, serverNowUs, after, meta, log}:
 * - 'ok' with the meta ("<run> <startUs> <entries> <bytes> <key>") when the stored snapshot was
 *   built on this server run and started after \`after\`;
 * - 'log' with the meta and "<length> <log key>" when it started earlier but its keeper's watermark
 *   is past \`after\`: that snapshot plus a re-read of the keys in the log's first <length>
 *   entries (the first is the keeper's header) is as good
 *   (see snapshot-keeper.ts);
 * - 'logwait' when a keeper serves that snapshot but has not reached \`after\` yet;
 * - else 'build' (the caller now holds the lease; meta is the run id, log why no stored snapshot
 *   would do: no_snapshot, server_restarted, no_keeper, other_keeper, or log_refused when the
 *   caller asked for no logged catch-up) or 'wait'.
 * INFO is only read when a candidate is found or a build starts, so the polls of waiting sidecars
 * stay cheap.
 */
export const FETCH_OR_LEASE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local after = tonumber(ARGV[1]) or now
local fmt = function(n) return string.format('%.0f', n) end
if ARGV[1] == '' then redis.call('SET', KEYS[3], fmt(now), 'PX', 10000) end
local meta = redis.call('GET', KEYS[1])
if meta then
  local mrun, mstart, mkey = string.match(meta, '^(%w+) (%d+) %d+ %d+ (.+)$')
  local state, log
  if mstart and tonumber(mstart) > after then state = 'ok'
  elseif mkey and ARGV[4] == '1' then
    local lw = redis.call('GET', KEYS[4])
    if lw then
      local lsnap, lus, llen, lkey = string.match(lw, '^(%S+) (%d+) (%d+) (%S+)$')
      if lus and lsnap == mkey then
        if tonumber(lus) > after then state = 'log' log = llen .. ' ' .. lkey else state = 'logwait' end
      end
    end
  end
  if state then
    local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or ''
    if mrun == run then
      if state == 'logwait' then
        -- The keeper advances only past an arrival it reads: one whose first poll's record
        -- expired before a slow keeper looked would wait for nothing.
        if (tonumber(redis.call('GET', KEYS[3]) or '0') or 0) < after then redis.call('SET', KEYS[3], fmt(after), 'PX', 10000) end
        return {'logwait', fmt(now), fmt(after), '', ''}
      end
      return {state, fmt(now), fmt(after), meta, log or ''}
    end
  end
end
-- Already ours: a retry of a call whose reply was lost.
if redis.call('GET', KEYS[2]) == ARGV[2] or redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or ''
  local why = 'no_snapshot'
  if meta then
    local lw = redis.call('GET', KEYS[4])
    if string.match(meta, '^(%w+) ') ~= run then why = 'server_restarted'
    elseif ARGV[4] ~= '1' then why = 'log_refused'
    elseif not lw then why = 'no_keeper'
    else why = 'other_keeper' end
  end
  return {'build', fmt(now), fmt(after), run, why}
end
return {'wait', fmt(now), fmt(after), '', ''}
`;

/**
 * KEYS: meta, log watermark, log. ARGV: snapshot key, watermark (server µs, '' = keep it), log
 * ttl ms, watermark ttl ms, the log's header, '1' if the log may be created now, keys to append...
 * Appends to the snapshot's log and, with a watermark, publishes "<snapshot key> <watermark>
 * <log length> <log key>", only while the meta still names this keeper's snapshot and the log is
 * the one this keeper wrote: its first entry is the keeper's own header, so a log that vanished
 * (deleted, expired) and would be recreated shorter by RPUSH is refused instead of published.
 * Returns 1; 0 when the snapshot was replaced, -1 when the log was lost: the keeper must stop.
 */
export const KEEP = `
local meta = redis.call('GET', KEYS[1])
if not meta or string.match(meta, '^%S+ %d+ %d+ %d+ (.+)$') ~= ARGV[1] then return 0 end
local n = redis.call('LLEN', KEYS[3])
if n == 0 then
  if ARGV[6] ~= '1' then return -1 end
  n = redis.call('RPUSH', KEYS[3], ARGV[5])
elseif redis.call('LINDEX', KEYS[3], 0) ~= ARGV[5] then return -1 end
if #ARGV > 6 then n = redis.call('RPUSH', KEYS[3], unpack(ARGV, 7)) end
redis.call('PEXPIRE', KEYS[3], ARGV[3])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. n .. ' ' .. KEYS[3], 'PX', ARGV[4])
else
  local lw = redis.call('GET', KEYS[2])
  if lw and string.sub(lw, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return 1
`;

/**
 * KEYS: meta, log watermark, log. ARGV: snapshot key, watermark ttl ms, log ttl ms, the log's
 * header, '1' once the keeper has created its log. Keeps this keeper's watermark and log alive
 * while one of its advances is slow (the watermark stays true: its log only grows), as long as
 * the meta still names its snapshot and the log is still the one it wrote (see KEEP).
 */
export const REFRESH = `
local meta = redis.call('GET', KEYS[1])
if not meta or string.match(meta, '^%S+ %d+ %d+ %d+ (.+)$') ~= ARGV[1] then return 0 end
if ARGV[5] == '1' then
  if redis.call('LINDEX', KEYS[3], 0) ~= ARGV[4] then return 0 end
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
local lw = redis.call('GET', KEYS[2])
if lw and string.sub(lw, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then redis.call('PEXPIRE', KEYS[2], ARGV[2]) return 1 end
return 0
`;

/** KEYS: log watermark. ARGV: snapshot key. A stopping keeper withdraws its watermark (not a successor's). */
export const UNKEEP = `
local lw = redis.call('GET', KEYS[1])
if lw and string.sub(lw, 1, #ARGV[1] + 1) == ARGV[1] .. ' ' then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;

/**
 * KEYS: meta, lease, staging, log watermark. ARGV: run id, started (server µs), entries, lease
 * id, grace ms, bytes written, watermark ttl ms ('' = the builder keeps no log). Makes the
 * staging key (the compressed snapshot the builder wrote) the published snapshot unless the
 * server restarted meanwhile, the key does not hold exactly what was written, or a newer one is
 * already published; the one it replaces lingers for grace ms so readers can finish. A builder
 * that will keep a log publishes a first watermark at the snapshot's start with it: true with an
 * empty log, it reaches no later resync, so those wait for the keeper's first real watermark (a
 * tick away) instead of finding none and building again.
 */
export const PUBLISH = `
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or ''
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
if run ~= ARGV[1] then return 0 end
if redis.call('STRLEN', KEYS[3]) ~= tonumber(ARGV[6]) then return 0 end
local meta = redis.call('GET', KEYS[1])
if meta then
  local mrun, mstart, _, _, mkey = string.match(meta, '^(%w+) (%d+) (%d+) (%d+) (.+)$')
  if mrun == run and mstart and tonumber(mstart) >= tonumber(ARGV[2]) then return 0 end
  if mkey then redis.call('PEXPIRE', mkey, ARGV[5]) end
end
local bytes = redis.call('STRLEN', KEYS[3])
redis.call('PERSIST', KEYS[3])
redis.call('SET', KEYS[1], run .. ' ' .. ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. bytes .. ' ' .. KEYS[3])
if ARGV[7] and ARGV[7] ~= '' then redis.call('SET', KEYS[4], KEYS[3] .. ' ' .. ARGV[2] .. ' 1 -', 'PX', ARGV[7]) end
return 1
`;

/** KEYS: meta. ARGV: the meta a reader found unreadable. Drops it unless it was replaced meanwhile. */
export const DROP = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`;
