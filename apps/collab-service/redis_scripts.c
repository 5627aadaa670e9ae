/*
 * The Redis engine's scripts (docs/COLLAB.md, "Storage"). Each checks the epoch first: a Redis
 * that lost its data (the epoch key gone or changed) answers {"EPOCH", epoch} and changes
 * nothing. Scripts never decide the board's rules (board.c does, in C, on every instance's
 * replica); they make an instance's checked write atomic with the board's head, so every
 * instance applies the same ops in the same order. Keys are passed as KEYS (one Redis, not a
 * cluster: the epoch key and a board's keys are in different slots).
 *
 * Per board B under the prefix P: P.."b:"..B..":meta" (hash: ops, chat = last offsets),
 * ":ops" and ":chat" (streams, entry id "<offset>-0", field j = the item's JSON), ":shapes"
 * (hash: id -> shape JSON), ":deleted" (zset: id scored by its delete's offset), ":joins"
 * (counter), ":turn" (the instance whose edit goes next), and its members: ":pz" (zset:
 * "<member id>|<instance>" -> expiry, ms of Redis' clock), ":ph" (hash: member id -> record
 * JSON), ":pn" (hash: holders per member), ":ps" (hash: session -> member id), ":pl" (zset:
 * members that left -> until when their id is refused), ":pv" (the member list's version).
 * P.."boards" (set), P.."members" (counter), P.."epoch". Events go to the channel P.."ev:"..B:
 * "o<offset> <item>", "c<offset> <item>", "m<version> <records>", "l<member id>" (it left),
 * "k<instance> <cursor>", "r" (a turn given back).
 */
#include "redis_link.h"

/* KEYS: epoch, boards, members, joins, meta, shapes, deleted, ops, chat, ps, ph.
 * ARGV: epoch, board, max boards, session ('' for no member), load (1/0), items per log.
 * With a session: its member on the board if it has one (its number and join number), else a
 * new member. {"OK", member, joins [, ops head, chat head, shapes, deleted, ops newest first,
 * chat newest first]} */
static const char open_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
    "if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 0 then\n"
    "  local n = redis.call('SCARD', KEYS[2])\n"
    "  if n >= tonumber(ARGV[3]) then return {'FULL', n} end\n"
    "  redis.call('SADD', KEYS[2], ARGV[2])\n"
    "end\n"
    "local member, joins = 0, 0\n"
    "if ARGV[4] ~= '' then\n"
    "  local id = redis.call('HGET', KEYS[10], ARGV[4])\n"
    "  local rec = id and redis.call('HGET', KEYS[11], id)\n"
    "  if rec then\n"
    "    local ok, r = pcall(cjson.decode, rec)\n"
    "    if ok and type(r) == 'table' and type(r.n) == 'number' then\n"
    "      member, joins = tonumber(string.sub(id, 2)) or 0, r.n\n"
    "    end\n"
    "  end\n"
    "  if member == 0 then\n"
    "    member = redis.call('INCR', KEYS[3])\n"
    "    joins = redis.call('INCR', KEYS[4]) - 1\n"
    "  end\n"
    "end\n"
    "if ARGV[5] ~= '1' then return {'OK', member, joins} end\n"
    "local heads = redis.call('HMGET', KEYS[5], 'ops', 'chat')\n"
    "return {'OK', member, joins, tonumber(heads[1]) or 0, tonumber(heads[2]) or 0,\n"
    "  redis.call('HGETALL', KEYS[6]), redis.call('ZRANGE', KEYS[7], 0, -1, 'WITHSCORES'),\n"
    "  redis.call('XREVRANGE', KEYS[8], '+', '-', 'COUNT', ARGV[6]),\n"
    "  redis.call('XREVRANGE', KEYS[9], '+', '-', 'COUNT', ARGV[6])}\n";

/*
 * An op the instance checked against its replica at offset `expected`: committed only if the
 * board is still there. Fairness: the first instance refused for being behind gets the board's
 * turn (a key that expires after `turn ms`); until it commits (or gives the turn back with an
 * empty item), other instances' edits are answered TURN and wait, so that one busy instance
 * cannot keep another's edits out by always being first. KEYS: epoch, meta, ops, shapes,
 * deleted, turn. ARGV: epoch, expected head, item, shape id, shape JSON after the op ('' for a
 * delete), items kept, tombstones kept, channel, items to return on a mismatch, instance,
 * turn ms. {"OK", offset}, {"HEAD", head, the entries after `expected`} or {"TURN", head}
 */
static const char edit_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
    "local turn = redis.call('GET', KEYS[6])\n"
    "if ARGV[3] == '' then\n"
    "  if turn == ARGV[10] then\n"
    "    redis.call('DEL', KEYS[6])\n"
    "    redis.call('PUBLISH', ARGV[8], 'r')\n"
    "  end\n"
    "  return {'OK', 0}\n"
    "end\n"
    "local head = tonumber(redis.call('HGET', KEYS[2], 'ops') or '0')\n"
    "local want = tonumber(ARGV[2])\n"
    "if head ~= want then\n"
    "  if not turn then redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[11]) end\n"
    "  return {'HEAD', head, redis.call('XRANGE', KEYS[3], (want + 1) .. '-0', '+', 'COUNT',\n"
    "    ARGV[9])}\n"
    "end\n"
    "if turn and turn ~= ARGV[10] then return {'TURN', head} end\n"
    "local n = head + 1\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[6], n .. '-0', 'j', ARGV[3])\n"
    "if ARGV[5] == '' then\n"
    "  redis.call('HDEL', KEYS[4], ARGV[4])\n"
    "  redis.call('ZADD', KEYS[5], n, ARGV[4])\n"
    "  local extra = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[7])\n"
    "  if extra > 0 then redis.call('ZPOPMIN', KEYS[5], extra) end\n"
    "else\n"
    "  redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])\n"
    "end\n"
    "redis.call('HSET', KEYS[2], 'ops', n)\n"
    "if turn then redis.call('DEL', KEYS[6]) end\n"
    "redis.call('PUBLISH', ARGV[8], 'o' .. n .. ' ' .. ARGV[3])\n"
    "return {'OK', n}\n";

/* A chat line: no rule to check, so the offset is assigned here. KEYS: epoch, meta, log.
 * ARGV: epoch, the item's JSON after its '{' (',' first unless empty), items kept, channel,
 * the meta field and event letter ("chat c"). {"OK", offset} */
static const char append_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
    "local field, letter = string.match(ARGV[5], '^(%a+) (%a)$')\n"
    "local n = redis.call('HINCRBY', KEYS[2], field, 1)\n"
    "local item = '{\"offset\":' .. n .. ARGV[2]\n"
    "redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], n .. '-0', 'j', item)\n"
    "redis.call('PUBLISH', ARGV[4], letter .. n .. ' ' .. item)\n"
    "return {'OK', n}\n";

/* Catching up. KEYS: epoch, meta, log. ARGV: epoch, meta field, first offset, count.
 * {"OK", head, entries} */
static const char tail_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
    "return {'OK', tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0'),\n"
    "  redis.call('XRANGE', KEYS[3], ARGV[3] .. '-0', '+', 'COUNT', ARGV[4])}\n";

/*
 * Members of a board across instances. A member (its record, JSON with its session) exists
 * while some instance holds it: each holder has an entry "<id>|<instance>" scored by its
 * expiry, which the instance pushes back at every refresh; a dead instance's entries expire.
 * An instance writes the members it holds, stops holding some (drops), and ends some
 * everywhere (leaves: the member's presence stream ended): a leave removes the record, keeps
 * the id out for a ttl (a holder that has not heard yet cannot bring it back) and is published
 * ("l<id>") so the other holders let their copies go. A record is written by a join (a rename)
 * and only kept by a refresh, so a holder's refresh never undoes another holder's rename. When
 * the list of records changed it gets a new version and is published. KEYS: epoch, pz (holders), ph
 * (records), pn (holders per id), ps (session -> id), pl (left ids), pv (version). ARGV: epoch, ttl
 * ms, channel, instance, number of held members, then id, session, record and write (1: the record
 * is new, 0: a refresh) for each, then the number of drops and their ids, then the ids that leave.
 * {"OK", version, "[records]", ids refused (they left)}
 */
static const char presence_lua[] =
    "local e = redis.call('GET', KEYS[1])\n"
    "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "local changed = false\n"
    "local function forget(id)\n"
    "  redis.call('HDEL', KEYS[4], id)\n"
    "  local rec = redis.call('HGET', KEYS[3], id)\n"
    "  if not rec then return end\n"
    "  redis.call('HDEL', KEYS[3], id)\n"
    "  local ok, r = pcall(cjson.decode, rec)\n"
    "  if ok and type(r) == 'table' and type(r.s) == 'string'\n"
    "      and redis.call('HGET', KEYS[5], r.s) == id then\n"
    "    redis.call('HDEL', KEYS[5], r.s)\n"
    "  end\n"
    "  changed = true\n"
    "end\n"
    "local function unhold(entry)\n"
    "  local id = string.match(entry, '^(.+)|[^|]*$')\n"
    "  if id and redis.call('HINCRBY', KEYS[4], id, -1) <= 0 then forget(id) end\n"
    "end\n"
    "for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do\n"
    "  redis.call('ZREM', KEYS[2], entry)\n"
    "  unhold(entry)\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)\n"
    "local refused = {}\n"
    "local i = 6\n"
    "for _ = 1, tonumber(ARGV[5]) do\n"
    "  local id, session, rec, write = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'\n"
    "  i = i + 4\n"
    "  if redis.call('ZSCORE', KEYS[6], id) then\n"
    "    table.insert(refused, id)\n"
    "  else\n"
    "    if redis.call('ZADD', KEYS[2], now + ttl, id .. '|' .. ARGV[4]) == 1 then\n"
    "      redis.call('HINCRBY', KEYS[4], id, 1)\n"
    "    end\n"
    "    local old = redis.call('HGET', KEYS[3], id)\n"
    "    if (write or not old) and old ~= rec then\n"
    "      redis.call('HSET', KEYS[3], id, rec)\n"
    "      changed = true\n"
    "    end\n"
    "    redis.call('HSET', KEYS[5], session, id)\n"
    "  end\n"
    "end\n"
    "local drops = tonumber(ARGV[i])\n"
    "i = i + 1\n"
    "for _ = 1, drops do\n"
    "  local entry = ARGV[i] .. '|' .. ARGV[4]\n"
    "  i = i + 1\n"
    "  if redis.call('ZREM', KEYS[2], entry) == 1 then unhold(entry) end\n"
    "end\n"
    "while i <= #ARGV do\n"
    "  redis.call('ZADD', KEYS[6], now + ttl, ARGV[i])\n"
    "  forget(ARGV[i])\n"
    "  redis.call('PUBLISH', ARGV[3], 'l' .. ARGV[i])\n"
    "  i = i + 1\n"
    "end\n"
    "local v\n"
    "if changed then v = redis.call('INCR', KEYS[7])\n"
    "else v = tonumber(redis.call('GET', KEYS[7]) or '0') end\n"
    "local list = '[' .. table.concat(redis.call('HVALS', KEYS[3]), ',') .. ']'\n"
    "if changed then redis.call('PUBLISH', ARGV[3], 'm' .. v .. ' ' .. list) end\n"
    "return {'OK', v, list, refused}\n";

/* The member of a session on a board, if it has one. KEYS: epoch, ps, ph. ARGV: epoch,
 * session. {"OK", record or ''} */
static const char member_lua[] = "local e = redis.call('GET', KEYS[1])\n"
                                 "if e ~= ARGV[1] then return {'EPOCH', e or ''} end\n"
                                 "local id = redis.call('HGET', KEYS[2], ARGV[2])\n"
                                 "return {'OK', id and redis.call('HGET', KEYS[3], id) or ''}\n";

const char *const collab_redis_scripts[RLS_COUNT] = {open_lua, edit_lua,     append_lua,
                                                     tail_lua, presence_lua, member_lua};
