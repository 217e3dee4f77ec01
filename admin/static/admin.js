// grpckit admin page: fetches the state (debug/grpckit/state, relative to
// the page, so the page works under any prefix) every data-refresh-ms and
// renders it. The DOM is built with createElement and textContent only:
// every value comes from the network.
(function () {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var HISTORY = 120; // latency samples kept per endpoint
  var TIMELINE_MS = 5 * 60 * 1000; // breaker timeline window
  var COLORS = { closed: '#2e9d48', 'half-open': '#e0a020', open: '#d33a2c' };

  var body = document.body;
  var refreshMs = parseInt(body.getAttribute('data-refresh-ms'), 10);
  if (!(refreshMs >= 100)) {
    refreshMs = 2000;
  }
  var statusEl = document.getElementById('status');
  var updatedEl = document.getElementById('updated');
  var updates = 0;
  var latencies = new Map(); // "clientID|address" → [ms, ...]

  // el builds an element: attrs is an object of attributes (null skips),
  // children are nodes or strings (set as text).
  function el(tag, attrs) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) {
      append(e, arguments[i]);
    }
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    for (var i = 2; i < arguments.length; i++) {
      append(e, arguments[i]);
    }
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) {
      return;
    }
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v !== null && v !== undefined) {
        e.setAttribute(k, String(v));
      }
    });
  }

  function append(e, c) {
    if (c === null || c === undefined || c === false) {
      return;
    }
    if (Array.isArray(c)) {
      c.forEach(function (x) { append(e, x); });
      return;
    }
    if (typeof c === 'object' && c.nodeType) {
      e.appendChild(c);
      return;
    }
    e.appendChild(document.createTextNode(String(c)));
  }

  // Formatting.

  function pad(n) { return n < 10 ? '0' + n : String(n); }

  function clock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  // parseTime reads an RFC 3339 time with up to nanoseconds.
  function parseTime(s) {
    if (!s) {
      return NaN;
    }
    return Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
  }

  function duration(ns) {
    if (!(ns > 0)) {
      return '0s';
    }
    var ms = ns / 1e6;
    if (ms < 1) {
      return (ns / 1e3).toFixed(0) + 'µs';
    }
    if (ms < 1000) {
      return ms.toFixed(ms < 10 ? 2 : 0) + 'ms';
    }
    var s = Math.floor(ms / 1000);
    var d = Math.floor(s / 86400);
    var h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60);
    var parts = [];
    if (d) { parts.push(d + 'd'); }
    if (h) { parts.push(h + 'h'); }
    if (m) { parts.push(m + 'm'); }
    parts.push(s % 60 + 's');
    return parts.slice(0, 2).join('');
  }

  function ago(t, now) {
    var ms = now - parseTime(t);
    if (isNaN(ms)) {
      return '';
    }
    return duration(Math.max(0, ms) * 1e6) + ' ago';
  }

  function bytes(n) {
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }

  function num(n) { return n === undefined || n === null ? '0' : String(n); }

  // badge classes by state.
  var GOOD = ['READY', 'SERVING', 'closed', 'yes'];
  var WARN = ['CONNECTING', 'IDLE', 'half-open', 'UNKNOWN', 'SERVICE_UNKNOWN'];
  function badge(text) {
    var cls = 'badge-bad';
    if (GOOD.indexOf(text) >= 0) {
      cls = 'badge-good';
    } else if (WARN.indexOf(text) >= 0) {
      cls = 'badge-warn';
    }
    return el('span', { class: 'badge ' + cls }, text || '?');
  }

  function kv(pairs) {
    var dl = el('dl', { class: 'kv' });
    pairs.forEach(function (p) {
      if (p) {
        dl.appendChild(el('dt', null, p[0]));
        dl.appendChild(el('dd', p[2] ? { class: p[2] } : null, p[1]));
      }
    });
    return dl;
  }

  function table(cls, heads, rows, empty) {
    var thead = el('thead', null, el('tr', null, heads.map(function (h) { return el('th', null, h); })));
    var tbody = el('tbody');
    rows.forEach(function (r) { tbody.appendChild(r); });
    if (!rows.length && empty) {
      tbody.appendChild(el('tr', null, el('td', { colspan: heads.length, class: 'note' }, empty)));
    }
    return el('table', { class: cls }, thead, tbody);
  }

  function td(v, cls) { return el('td', cls ? { class: cls } : null, v); }

  function callsText(c) {
    c = c || {};
    return num(c.inFlight) + ' in flight, ' + num(c.done) + ' done, ' + num(c.failed) + ' failed';
  }

  function errorsTable(c, now) {
    var recent = (c && c.recentErrors) || [];
    if (!recent.length) {
      return null;
    }
    return el('details', { class: 'errors' },
      el('summary', null, 'recent errors (' + recent.length + ')'),
      table('errors', ['time', 'method', 'code', 'message', 'peer'], recent.map(function (e) {
        var t = parseTime(e.time);
        return el('tr', null,
          td(isNaN(t) ? '' : clock(new Date(t)), 'nowrap'),
          td(e.method, 'mono'), td(el('span', { class: 'badge badge-bad' }, e.code)),
          td(e.message, 'msg'), td(e.peer || '', 'mono'));
      })));
  }

  function limitersTable(ls) {
    if (!ls || !ls.length) {
      return null;
    }
    return table('limiters', ['limiter', 'rejected (rate)', 'rejected (concurrency)', 'in flight', 'keys'],
      ls.map(function (l) {
        return el('tr', null, td(l.name, 'mono'), td(num(l.rejectedRate)), td(num(l.rejectedConcurrency)),
          td(num(l.inFlight)), td(num(l.keys)));
      }));
  }

  // hedgingText summarizes a client's hedging: its delay, attempts, budget
  // and counts.
  function hedgingText(h) {
    var delay = h.percentile > 0 ?
      'p' + h.percentile + ' of recent latency within [' + duration(h.minDelayNs) + ', ' + duration(h.maxDelayNs) + ']' :
      'fixed delay';
    return delay + ', up to ' + num(h.maxAttempts) + ' attempts; budget ' + (h.available || 0).toFixed(1) + ' / ' +
      (h.capacity || 0).toFixed(1) + ' available; hedges: ' + num(h.sent) + ' sent, ' + num(h.won) + ' won, ' +
      num(h.exhausted) + ' refused by the budget';
  }

  // hedgingTable lists the hedged methods: the current delay before a
  // hedge and the counts.
  function hedgingTable(h) {
    var ms = (h && h.methods) || [];
    if (!ms.length) {
      return null;
    }
    return table('hedging', ['hedged method', 'delay', 'calls', 'hedges sent', 'won', 'refused (budget)'],
      ms.map(function (m) {
        var delay = duration(m.delayNs);
        if (h.percentile > 0) {
          delay += m.measured ? ' (p' + h.percentile + ')' : ' (max, measuring)';
        }
        return el('tr', { 'data-hedge-method': m.method, 'data-calls': num(m.calls), 'data-sent': num(m.sent),
          'data-won': num(m.won) },
        td(m.method, 'mono'), td(delay), td(num(m.calls), 'num'), td(num(m.sent), 'num'), td(num(m.won), 'num'),
        td(num(m.exhausted), 'num'));
      }));
  }

  // Charts.

  // shareBar is a horizontal bar of width share (0 to 1).
  function shareBar(share) {
    var w = 80;
    var fill = Math.max(0, Math.min(1, share || 0)) * w;
    return svg('svg', { class: 'bar', width: w, height: 10, viewBox: '0 0 ' + w + ' 10', role: 'img' },
      svg('title', null, (100 * (share || 0)).toFixed(1) + '% of calls'),
      svg('rect', { x: 0, y: 0, width: w, height: 10, fill: '#e6e9ef' }),
      svg('rect', { x: 0, y: 0, width: fill.toFixed(1), height: 10, fill: '#3b6fd8' }));
  }

  // sparkline draws the samples, scaled to their maximum.
  function sparkline(samples) {
    var w = 120;
    var h = 20;
    var max = 0;
    samples.forEach(function (v) { max = Math.max(max, v); });
    var s = svg('svg', { class: 'spark', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' },
      svg('title', null, 'latency, last ' + samples.length + ' samples, max ' + max.toFixed(2) + 'ms'));
    if (samples.length < 2 || max <= 0) {
      s.appendChild(svg('line', { x1: 0, y1: h - 1, x2: w, y2: h - 1, stroke: '#b8bfcc', 'stroke-width': 1 }));
      return s;
    }
    var step = w / (HISTORY - 1);
    var x0 = w - step * (samples.length - 1);
    var pts = samples.map(function (v, i) {
      return (x0 + i * step).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 2)).toFixed(1);
    });
    s.appendChild(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: '#3b6fd8', 'stroke-width': 1.5 }));
    return s;
  }

  // timeline draws a breaker's state over the last five minutes (or since
  // the process started, if later) from its transitions (oldest first);
  // now is the state's time.
  function timeline(b, now, started) {
    var w = 240;
    var h = 12;
    var start = now - TIMELINE_MS;
    if (started > start && started < now) {
      start = started;
    }
    var span = now - start;
    var ts = (b.transitions || []).map(function (t) {
      return { t: parseTime(t.time), from: t.from, to: t.to };
    }).filter(function (t) { return !isNaN(t.t); });
    // The state at the window's start.
    var state = ts.length ? ts[0].from : b.state;
    ts.forEach(function (t) {
      if (t.t <= start) {
        state = t.to;
      }
    });
    var segs = [];
    var from = start;
    ts.forEach(function (t) {
      if (t.t > start && t.t <= now) {
        segs.push({ from: from, to: t.t, state: state });
        from = t.t;
        state = t.to;
      }
    });
    segs.push({ from: from, to: now, state: state });
    var s = svg('svg', { class: 'timeline', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' },
      svg('title', null, 'breaker state since ' + clock(new Date(start)) + ': ' + ts.length + ' transitions'));
    segs.forEach(function (g) {
      var x = (g.from - start) / span * w;
      var x2 = (g.to - start) / span * w;
      var r = svg('rect', {
        x: x.toFixed(2), y: 0, width: Math.max(1, x2 - x).toFixed(2), height: h,
        fill: COLORS[g.state] || '#999', 'data-state': g.state, class: 'seg seg-' + g.state
      });
      r.appendChild(svg('title', null, g.state + ' from ' + clock(new Date(g.from))));
      s.appendChild(r);
    });
    return s;
  }

  // Sections.

  function renderProcess(p) {
    p = p || {};
    return [el('h2', null, 'Process'), kv([
      ['pid', num(p.pid)],
      ['command', p.command || '', 'mono'],
      ['Go', p.goVersion || ''],
      ['uptime', duration(p.uptimeNs)],
      ['goroutines', num(p.goroutines)],
      ['heap', bytes(p.heapBytes || 0)],
      ['GC cycles', num(p.gcCycles)]
    ])];
  }

  function renderServer(s, now) {
    var card = el('div', { class: 'card', 'data-server-id': s.id },
      el('h3', null, 'server ' + s.id + ' ', badge(s.status)),
      kv([
        ['addresses', (s.addresses || []).join(', '), 'mono'],
        s.admin ? ['admin', s.admin, 'mono'] : null,
        ['calls', callsText(s.calls)]
      ]));
    var svcs = s.services || [];
    if (svcs.length) {
      card.appendChild(table('services', ['service', 'health'], svcs.map(function (v) {
        return el('tr', { 'data-service': v.name }, td(v.name || '(server)', 'mono'), td(badge(v.status)));
      })));
    }
    var regs = s.registrations || [];
    if (regs.length) {
      card.appendChild(table('registrations', ['registry', 'key', 'address', 'registered', 'since', 'error', 'repairs'],
        regs.map(function (r) {
          return el('tr', { 'data-registration': r.key },
            td(r.registry), td(r.key, 'mono'), td(r.address || '', 'mono'),
            td(badge(r.registered ? 'yes' : 'no')), td(r.since ? ago(r.since, now) : ''),
            td(r.error || '', 'msg'), td(num(r.repairs)));
        })));
    }
    append(card, limitersTable(s.limiters));
    append(card, errorsTable(s.calls, now));
    return card;
  }

  function resolverLine(r, now) {
    return kv([
      ['registry', r.answered ? 'answered' : 'waiting for its first answer'],
      ['endpoints', num((r.endpoints || []).length)],
      r.lastSync ? ['last sync', ago(r.lastSync, now)] : null,
      r.stalenessNs > 0 ? ['stale for', duration(r.stalenessNs)] : null,
      r.error ? ['error', r.error, 'msg'] : null,
      r.gaveUp ? ['gave up', 'endpoints withdrawn (max staleness)'] : null
    ]);
  }

  function renderClient(c, now, started, seen) {
    var eps = c.endpoints || [];
    var total = 0;
    eps.forEach(function (e) { total += e.calls || 0; });
    var rows = eps.map(function (e) {
      var key = c.id + '|' + e.address;
      seen.add(key);
      var h = latencies.get(key);
      if (!h) {
        h = [];
        latencies.set(key, h);
      }
      h.push((e.latencyNs || 0) / 1e6);
      if (h.length > HISTORY) {
        h.splice(0, h.length - HISTORY);
      }
      var share = total > 0 ? (e.calls || 0) / total : 0;
      return el('tr', { 'data-endpoint': e.address, 'data-state': e.state, 'data-ejected': e.ejected ? 'true' : 'false' },
        td(e.address, 'mono'), td(badge(e.state)), td(num(e.conns), 'num'), td(num(e.inFlight)),
        td(((e.latencyNs || 0) / 1e6).toFixed(2), 'num'), td(sparkline(h)),
        td((100 * (e.successRate || 0)).toFixed(1) + '%', 'num'), td((e.score || 0).toPrecision(3), 'num'),
        td(num(e.calls), 'num'), td(el('span', { class: 'share' }, shareBar(share), ' ' + (100 * share).toFixed(0) + '%')),
        td(num(e.failures), 'num'),
        td(e.ejected ? el('span', { class: 'badge badge-bad' }, 'ejected') : 'no'), td(num(e.ejections), 'num'));
    });
    var card = el('div', { class: 'card', 'data-client-id': c.id, 'data-target': c.target },
      el('h3', null, 'client ' + c.id + ' ', el('span', { class: 'mono' }, c.target), ' ', badge(c.state)),
      kv([
        ['balancer', c.balancer || ''],
        ['calls', callsText(c.calls)],
        c.retry ? ['retry budget', c.retry.available.toFixed(1) + ' / ' + c.retry.capacity.toFixed(1) +
          ' available, ' + num(c.retry.retries) + ' retries, ' + num(c.retry.exhausted) + ' exhausted'] : null,
        c.hedging ? ['hedging', hedgingText(c.hedging)] : null,
        ['ejected', num(c.ejected)]
      ]),
      table('endpoints', ['address', 'state', 'conns', 'in flight', 'latency ms', 'latency history', 'success', 'score', 'calls',
        'share', 'failures', 'ejected', 'ejections'], rows, 'no endpoints'));
    var brs = c.breakers || [];
    if (brs.length) {
      card.appendChild(table('breakers', ['breaker', 'state', 'requests', 'successes', 'failures', 'consecutive',
        'rejected', 'history (5 min)'], brs.map(function (b) {
        return el('tr', {
          'data-breaker-key': b.key, 'data-breaker-state': b.state,
          'data-transitions': (b.transitions || []).length
        },
        td(b.key, 'mono'), td(badge(b.state)), td(num(b.requests), 'num'), td(num(b.successes), 'num'),
        td(num(b.failures), 'num'), td(num(b.consecutiveFailures), 'num'), td(num(b.rejected), 'num'),
        td(timeline(b, now, started)));
      })));
    }
    append(card, hedgingTable(c.hedging));
    append(card, limitersTable(c.limiters));
    if (c.resolver) {
      card.appendChild(el('div', { class: 'sub' }, el('h4', null, 'resolver'), resolverLine(c.resolver, now)));
    }
    append(card, errorsTable(c.calls, now));
    return card;
  }

  function renderResolver(r, now) {
    var name = r.scheme + ':///' + r.service;
    return el('div', { class: 'card resolver', 'data-resolver': name },
      el('h3', null, el('span', { class: 'mono' }, name), ' ',
        r.gaveUp ? badge('gave up') : r.error ? badge('stale') : badge(r.answered ? 'READY' : 'CONNECTING')),
      resolverLine(r, now));
  }

  function render(st) {
    var now = parseTime(st.time);
    if (isNaN(now)) {
      now = Date.now();
    }
    replace('process', renderProcess(st.process));

    var servers = st.servers || [];
    var sv = [el('h2', null, 'Servers (' + servers.length + ')')];
    servers.forEach(function (s) { sv.push(renderServer(s, now)); });
    if (!servers.length) {
      sv.push(el('p', { class: 'note' }, 'No grpckit server in this process.'));
    }
    replace('servers', sv);

    var clients = st.clients || [];
    var seen = new Set();
    var cl = [el('h2', null, 'Clients (' + clients.length + ')')];
    var started = parseTime(st.process && st.process.started);
    clients.forEach(function (c) { cl.push(renderClient(c, now, started, seen)); });
    if (!clients.length) {
      cl.push(el('p', { class: 'note' }, 'No grpckit client in this process.'));
    }
    replace('clients', cl);
    latencies.forEach(function (_, k) {
      if (!seen.has(k)) {
        latencies.delete(k);
      }
    });

    var resolvers = st.resolvers || [];
    var rs = [el('h2', null, 'Resolvers (' + resolvers.length + ')')];
    resolvers.forEach(function (r) { rs.push(renderResolver(r, now)); });
    if (!resolvers.length) {
      rs.push(el('p', { class: 'note' }, 'No grpckit resolver in this process (clients dial with gRPC\'s own resolvers).'));
    }
    replace('resolvers', rs);
  }

  function replace(id, nodes) {
    var e = document.getElementById(id);
    e.replaceChildren.apply(e, nodes);
  }

  function setStatus(live) {
    statusEl.textContent = live ? 'live' : 'disconnected';
    statusEl.className = 'badge ' + (live ? 'badge-good' : 'badge-bad');
    body.classList.toggle('disconnected', !live);
  }

  function tick() {
    var ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, Math.max(5000, 3 * refreshMs)) : null;
    fetch('debug/grpckit/state', { cache: 'no-store', signal: ctrl ? ctrl.signal : undefined })
      .then(function (r) {
        if (!r.ok) {
          throw new Error('HTTP ' + r.status);
        }
        return r.json();
      })
      .then(function (st) {
        render(st);
        updates++;
        updatedEl.setAttribute('data-updates', String(updates));
        updatedEl.textContent = 'updated ' + clock(new Date());
        setStatus(true);
      })
      .catch(function (err) {
        setStatus(false);
        updatedEl.title = String(err);
      })
      .then(function () {
        if (timer) {
          clearTimeout(timer);
        }
        setTimeout(tick, refreshMs);
      });
  }

  // First view: the state the page was rendered with, then refreshes.
  var initial = document.getElementById('initial-state');
  if (initial) {
    try {
      render(JSON.parse(initial.textContent));
    } catch (e) {
      // Keep the server-rendered view.
    }
  }
  setTimeout(tick, refreshMs);
}());
