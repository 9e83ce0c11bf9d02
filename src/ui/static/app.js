// The live security page. Every value reaches the DOM through textContent or an SVG attribute,
// never innerHTML, so nothing the sidecar reports (user ids, paths, alert fields) can become markup.
'use strict';
(function () {
  var accessToken = '';
  var POLL_MS = 1000;

  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fillTable(id, rows, cols) {
    var body = $(id).tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      var tr = el('tr');
      var td = el('td', 'none', 'empty');
      td.colSpan = cols;
      tr.appendChild(td);
      body.appendChild(tr);
      return;
    }
    rows.forEach(function (cells) {
      var tr = el('tr');
      cells.forEach(function (c) {
        if (c instanceof Node) { var td = el('td'); td.appendChild(c); tr.appendChild(td); }
        else tr.appendChild(el('td', c));
      });
      body.appendChild(tr);
    });
  }
  function ttl(s) {
    if (s === null || s === undefined) return 'no expiry';
    if (s >= 3600) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    if (s >= 60) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function flat(v) {
    if (v === null || typeof v !== 'object') return String(v);
    return Object.keys(v).map(function (k) { return k + ': ' + flat(v[k]); }).join(Array.isArray(v) ? '; ' : ', ');
  }
  function us(v) { return v >= 1000 ? (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' ms' : v + ' µs'; }
  function time(ms) { return new Date(ms).toISOString().slice(11, 19); }
  function reasonCell(r) { return el('span', r, r === 'allowed' ? 'reason-allow' : 'reason-deny'); }
  function headers(extra) {
    var h = extra || {};
    if (accessToken) h.authorization = 'Bearer ' + accessToken;
    return h;
  }

  function drawChart(live) {
    var svg = $('chart');
    var NS = 'http://www.w3.org/2000/svg';
    svg.replaceChildren();
    var W = 900, H = 220, L = 40, B = 20, T = 8;
    var n = live.seconds.length;
    var allow = new Array(n).fill(0), deny = new Array(n).fill(0);
    Object.keys(live.by_reason).forEach(function (r) {
      var target = r === 'allowed' ? allow : deny;
      live.by_reason[r].forEach(function (v, i) { target[i] += v; });
    });
    var max = Math.max(1, Math.max.apply(null, allow.concat(deny)));
    function x(i) { return L + (i / Math.max(1, n - 1)) * (W - L - 4); }
    function y(v) { return T + (1 - v / max) * (H - T - B); }
    [0, 0.5, 1].forEach(function (f) {
      var line = document.createElementNS(NS, 'line');
      line.setAttribute('class', 'grid');
      line.setAttribute('x1', L); line.setAttribute('x2', W - 4);
      line.setAttribute('y1', y(max * f)); line.setAttribute('y2', y(max * f));
      svg.appendChild(line);
      var label = document.createElementNS(NS, 'text');
      label.setAttribute('x', 2); label.setAttribute('y', y(max * f) + 4);
      label.textContent = String(Math.round(max * f));
      svg.appendChild(label);
    });
    [['allow', allow], ['deny', deny]].forEach(function (s) {
      var pts = s[1].map(function (v, i) { return x(i).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
      var pl = document.createElementNS(NS, 'polyline');
      pl.setAttribute('class', s[0]);
      pl.setAttribute('points', pts);
      svg.appendChild(pl);
    });
    var end = document.createElementNS(NS, 'text');
    end.setAttribute('x', W - 60); end.setAttribute('y', H - 4);
    end.textContent = 'now';
    svg.appendChild(end);
  }

  function render(s) {
    $('policy-hash').textContent = s.policy.hash;
    $('workers').textContent = s.workers > 1 ? s.workers + ' workers' : '1 process';
    $('updated').textContent = time(s.generated_at);
    var health = $('health');
    health.textContent = s.health.ready ? 'ready' : 'NOT READY';
    health.className = 'pill ' + (s.health.ready ? 'ok' : 'bad');

    var live = s.live;
    drawChart(live);
    var last = live.seconds.length - 1;
    var reasons = Object.keys(live.totals).sort(function (a, b) { return live.totals[b] - live.totals[a]; });
    fillTable('totals', reasons.map(function (r) {
      return [reasonCell(r), live.totals[r], last >= 0 ? live.by_reason[r][last] : 0];
    }), 3);
    $('p50').textContent = us(live.latency_us.p50);
    $('p90').textContent = us(live.latency_us.p90);
    $('p99').textContent = us(live.latency_us.p99);
    $('lat-count').textContent = String(live.latency_us.count);
    fillTable('denies', live.recent_denies.map(function (d) {
      return [time(d.t), reasonCell(d.reason), d.method + ' ' + d.path, d.resource, d.user, d.ip];
    }), 6);

    var rows = [];
    Object.keys(s.health).forEach(function (k) {
      if (k === 'ready') return;
      var v = s.health[k];
      rows.push([k, flat(v)]);
    });
    fillTable('health-table', rows, 2);

    fillTable('suspended', s.state.suspended.map(function (e) { return [e.id, ttl(e.ttl_s)]; }), 2);
    fillTable('blocked', s.state.blocked_ips.concat(s.state.blocked_cidrs).map(function (e) { return [e.id, ttl(e.ttl_s)]; }), 2);
    fillTable('risk', s.state.risk.map(function (e) { return [e.id, e.score, ttl(e.ttl_s)]; }), 3);
    fillTable('alerts', s.alerts.map(function (a) {
      var subject = a.ip || a.user || a.target || a.sub || '';
      var by = a.by || a.source || '';
      return [a.at || '', a.type, typeof subject === 'string' ? subject : JSON.stringify(subject), typeof by === 'string' ? by : JSON.stringify(by)];
    }), 4);
    fillTable('checks', s.policy.checks.map(function (c, i) { return [i, c.name, c.shadowed ? 'shadow (logs only)' : 'enforced']; }), 3);
    fillTable('would-deny', Object.keys(live.would_deny).map(function (r) { return [reasonCell(r), live.would_deny[r]]; }), 2);
  }

  function poll() {
    fetch('api/snapshot', { headers: headers(), cache: 'no-store' }).then(function (res) {
      if (res.status === 401) { $('auth').hidden = false; return null; }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      $('auth').hidden = true;
      return res.json();
    }).then(function (s) {
      if (s) render(s);
    }).catch(function (err) {
      $('updated').textContent = 'error: ' + err.message;
    }).finally(function () {
      setTimeout(poll, POLL_MS);
    });
  }

  $('auth-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    accessToken = $('auth-token').value;
    $('auth-error').textContent = '';
  });

  $('explain-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var f = ev.target;
    var body = { method: f.method.value, path: f.path.value, host: f.host.value, ip: f.ip.value, token: f.token.value };
    $('explain-result').textContent = '…';
    fetch('api/explain', { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body), cache: 'no-store' })
      .then(function (res) { return res.json().then(function (j) { return { status: res.status, body: j }; }); })
      .then(function (r) {
        var out = $('explain-result');
        if (r.status !== 200) { out.textContent = 'error: ' + (r.body.error || r.status); out.className = 'verdict error'; return; }
        out.textContent = (r.body.decision === 'allow' ? 'ALLOW ' : 'DENY ') + r.body.reason + ' (HTTP ' + r.body.http_status + ')';
        out.className = 'verdict ' + (r.body.decision === 'allow' ? 'reason-allow' : 'reason-deny');
        fillTable('explain-trace', r.body.trace.map(function (t) { return [t.verdict, t.check, t.reason || '', t.detail || '']; }), 4);
      })
      .catch(function (err) { $('explain-result').textContent = 'error: ' + err.message; });
  });

  poll();
})();
