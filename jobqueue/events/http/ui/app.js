// jobqueue dashboard. Plain JavaScript, no framework, no build step.
//
// Every URL is relative to the page (served at .../ui), so "jobs" is .../jobs
// whatever stage or base path sits in front. Job data only ever reaches the
// page as text (textContent, text nodes, attribute values); the page's
// Content-Security-Policy requires Trusted Types, so an HTML string assigned to
// innerHTML would throw rather than render.
'use strict';

(() => {
  const TOKEN_KEY = 'jobqueue.token';
  const REFRESH_MS = 5000;
  const PAGE_SIZE = 25;
  const FILTERS = ['state', 'queue', 'task'];

  const $ = (id) => document.getElementById(id);

  // --- building DOM from data, as text only ---------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child)); // a string becomes a text node
    }
    return node;
  }

  function badge(state) {
    return el('span', { class: `badge ${state}` }, state);
  }

  function duration(seconds) {
    const s = Math.floor(Math.abs(seconds));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function relative(iso) {
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (Number.isNaN(seconds)) return iso;
    if (Math.abs(seconds) < 1) return 'just now';
    return seconds > 0 ? `${duration(seconds)} ago` : `in ${duration(seconds)}`;
  }

  // A time as its age, the ISO time on hover.
  function when(iso) {
    if (!iso) return el('span', { class: 'muted' }, '\u2014');
    return el('time', { datetime: iso, title: iso }, relative(iso));
  }

  function pretty(value) {
    return el('pre', {}, JSON.stringify(value, null, 2));
  }

  // --- durable jobs: what a job waits for, its progress, its steps ------------------

  const CANCELLABLE = ['pending', 'waiting', 'blocked', 'running'];
  const MAX_STEPS_SHOWN = 50;

  // What a waiting (or blocked) job waits for, as words and times.
  function waitingFor(reason) {
    if (!reason || typeof reason !== 'object') return null;
    if (reason.sleep_until) return el('span', { class: 'reason' }, 'a sleep, until ', when(reason.sleep_until));
    if (typeof reason.signal === 'string') {
      return el('span', { class: 'reason' }, 'the signal ', el('code', {}, reason.signal),
        reason.timeout_at ? [', times out ', when(reason.timeout_at)] : ', no timeout');
    }
    return el('span', { class: 'reason' }, JSON.stringify(reason));
  }

  // The same, short, for a row of the job list.
  function waitingHint(reason) {
    if (!reason || typeof reason !== 'object') return null;
    if (reason.sleep_until) return `sleeps, wakes ${relative(reason.sleep_until)}`;
    if (typeof reason.signal === 'string') return `waits for ${reason.signal}`;
    return null;
  }

  // --- workflows: a job's parents and children ----------------------------------------

  const MAX_RELATED_SHOWN = 100; // links listed for each side; the rest are counted
  const MAX_RELATED_LOOKED_UP = 12; // related jobs whose task and state the open job shows
  const ENDED = ['succeeded', 'failed', 'cancelled'];
  const parentCounts = new Map(); // a blocked job's id -> how many parents it has (fixed when submitted)

  const parents = (n) => `${n.toLocaleString('en')} parent${n === 1 ? '' : 's'}`;

  // How many parents a blocked job still waits for: those that have not ended,
  // once every parent's state is known (a few are looked up), else all of them.
  function waitingOn(ids, known) {
    if (!ids.every((id) => known.has(id))) return parents(ids.length);
    const left = ids.filter((id) => !ENDED.includes(known.get(id).state)).length;
    return left === ids.length ? parents(ids.length) : `${left.toLocaleString('en')} of ${parents(ids.length)}`;
  }

  // What a row of the job list says of a blocked job.
  function blockedHint(job) {
    if (job.state !== 'blocked') return null;
    const n = parentCounts.get(job.id);
    return n === undefined ? 'waits for its parents' : `waits for ${parents(n)}`;
  }

  // A blocked job in the list does not carry its parents: read once per job, and kept.
  async function countParents(jobs, mine) {
    const unknown = jobs.filter((job) => job.state === 'blocked' && !parentCounts.has(job.id));
    await Promise.allSettled(unknown.map(async (job) => {
      const found = (await api('GET', `jobs/${encodeURIComponent(job.id)}`)).job;
      if (Array.isArray(found.depends_on)) parentCounts.set(job.id, found.depends_on.length);
    }));
    if (mine !== session) return;
    for (const job of unknown) {
      const hint = document.querySelector(`#jobs tr[data-id="${CSS.escape(job.id)}"] .hint`);
      if (hint) hint.replaceChildren(' \u00b7 ', blockedHint(job));
    }
  }

  // The task and state of a few of the open job's parents and children; any that
  // cannot be read (pruned since) is shown by its id alone.
  async function lookUp(ids) {
    const found = new Map();
    await Promise.allSettled(ids.slice(0, MAX_RELATED_LOOKED_UP).map(async (id) => {
      found.set(id, (await api('GET', `jobs/${encodeURIComponent(id)}`)).job);
    }));
    return found;
  }

  const jobLink = (id, props) => el('a', { href: hashFor({ job: id }), class: 'mono', title: id, ...props }, `\u2026${id.slice(-12)}`);

  // One side of the open job's links: each related job opens on a click.
  function relatedList(side, ids, total, known) {
    const shown = ids.slice(0, MAX_RELATED_SHOWN);
    const more = total - shown.length;
    return el('div', {},
      el('ul', { class: 'related', 'data-related': side }, shown.map((id) => {
        const other = known.get(id);
        return el('li', { 'data-job': id }, jobLink(id),
          other ? [' ', el('span', { class: 'related-task' }, other.task), ' ', badge(other.state)] : null);
      })),
      more > 0 ? el('p', { class: 'muted more', 'data-more': side }, `and ${more.toLocaleString('en')} more`) : null,
    );
  }

  // A value from 0 to 1 is a bar with its percentage; any other number is shown as it is.
  function progressView(progress) {
    const value = progress.value;
    const fraction = typeof value === 'number' && value >= 0 && value <= 1;
    const percent = fraction ? `${Math.round(value * 1000) / 10}%` : null;
    return el('div', { class: 'progress' },
      fraction
        ? [el('progress', { max: '1', value: String(value), 'aria-label': `${percent} done` }), el('span', { class: 'progress-value' }, percent)]
        : el('span', { class: 'progress-value' }, String(value)),
      progress.message ? el('span', { class: 'progress-message' }, progress.message) : null,
      progress.at ? el('span', { class: 'muted' }, when(progress.at)) : null,
    );
  }

  // One checkpoint: a completed step (or a signal taken), a sleep, or a wait.
  function stepView(step) {
    let what = null;
    if (step.until) what = ['sleep until ', when(step.until)];
    else if (step.timed_out) what = 'wait timed out';
    else if ('timeout_at' in step) what = step.timeout_at ? ['wait, times out ', when(step.timeout_at)] : 'wait, no timeout';
    return el('li', { 'data-step': step.name },
      el('span', { class: 'step-name mono' }, step.name),
      ' ', when(step.at),
      what ? el('span', { class: 'step-what' }, ' \u00b7 ', what) : null,
    );
  }

  // --- the API ----------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message, details) {
      super(message);
      this.status = status;
      this.details = details || {};
    }
  }

  const signedIn = () => sessionStorage.getItem(TOKEN_KEY) !== null;

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (error) {
      throw new ApiError(0, `the API did not answer (${error.message})`);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.message === 'string' ? data.message : `HTTP ${response.status}`;
      throw new ApiError(response.status, message, data && data.details);
    }
    return data;
  }

  // --- what is shown: filters and the open job live in the URL's hash -----------------

  let view = readView();
  let cursors = [null]; // keyset cursors of the pages seen; the last is the current page
  let nextCursor = null;
  let settings = null; // GET /queues answered (true), is not deployed (false), unknown (null)
  let session = 0; // bumped on sign-in and sign-out, so late answers are dropped

  function readView() {
    const params = new URLSearchParams(location.hash.slice(1));
    const found = {};
    for (const key of [...FILTERS, 'job']) found[key] = params.get(key) || '';
    return found;
  }

  function hashFor(changes) {
    const next = { ...view, ...changes };
    const params = new URLSearchParams();
    for (const key of [...FILTERS, 'job']) if (next[key]) params.set(key, next[key]);
    return `#${params.toString()}`;
  }

  const filterKey = (v) => FILTERS.map((key) => v[key]).join('\u0000');

  function onHashChange() {
    const before = view;
    view = readView();
    if (filterKey(before) !== filterKey(view)) {
      cursors = [null];
      nextCursor = null;
    }
    syncForm();
    showDetail();
    // One column (a phone, a narrow window): the job opens above the list, so bring it into view.
    if (view.job && view.job !== before.job && matchMedia('(max-width: 1100px)').matches) {
      $('detail').scrollIntoView({ block: 'start' });
    }
    refresh();
  }

  function syncForm() {
    const form = $('filters');
    for (const key of FILTERS) form.elements[key].value = view[key];
  }

  // --- refreshing: one refresh at a time, every few seconds, not while hidden ---------

  let timer = 0;
  let running = null;
  let again = false;

  function refresh() {
    if (!signedIn()) return Promise.resolve();
    if (running) {
      again = true; // once the current one is done; never two at once
      return running;
    }
    clearTimeout(timer);
    timer = 0;
    running = refreshOnce().finally(() => {
      running = null;
      if (again) {
        again = false;
        refresh();
      } else {
        schedule();
      }
    });
    return running;
  }

  function schedule() {
    clearTimeout(timer);
    timer = 0;
    if (signedIn() && !document.hidden) timer = setTimeout(refresh, REFRESH_MS);
  }

  async function refreshOnce() {
    const mine = session;
    const results = await Promise.allSettled([loadQueues(mine), loadJobs(mine), loadDetail(mine)]);
    if (mine !== session) return;
    const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
    const refused = failures.find((error) => error.status === 401);
    if (refused) {
      signOut(`The API refused the token (${refused.message}). Enter it again.`);
      return;
    }
    if (failures.length) {
      notify(`Could not refresh: ${failures[0].message}`, 'refresh');
      $('updated').textContent = 'Refresh failed; retrying';
    } else {
      clearNotice('refresh');
      $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
    }
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = 0;
    } else if (!running) {
      refresh();
    }
  });

  // --- queues ---------------------------------------------------------------------------

  async function loadQueues(mine) {
    let queues;
    if (settings !== false) {
      try {
        queues = (await api('GET', 'queues')).queues;
        settings = true;
      } catch (error) {
        if (error.status !== 404) throw error;
        settings = false; // an older deployment: counts from /stats, no settings
      }
    }
    if (!queues) {
      const stats = (await api('GET', 'stats')).stats;
      queues = Object.entries(stats.queues).map(([name, entry]) => ({ name, ...entry }));
    }
    if (mine !== session) return;
    queues.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    renderQueues(queues);
  }

  function countCell(queue, state, className) {
    const n = (queue.counts && queue.counts[state]) || 0;
    const link = el('a', { href: hashFor({ queue: queue.name, state, job: '' }), title: `${state} jobs in ${queue.name}` });
    link.append(n.toLocaleString('en'));
    return el('td', { class: `num ${n ? '' : 'zero'} ${className || ''}` }, link);
  }

  function limit(value) {
    return value === null || value === undefined ? el('span', { class: 'muted' }, 'none') : String(value);
  }

  function rate(value) {
    if (!value) return el('span', { class: 'muted' }, 'none');
    return `${value.limit} per ${value.per_seconds} s`;
  }

  function renderQueues(queues) {
    const head = ['Queue'];
    if (settings) head.push('Status');
    head.push('Pending', 'Waiting', 'Blocked', 'Running', 'Failed', 'Succeeded', 'Cancelled', 'Oldest pending');
    if (settings) head.push('Concurrency', 'Rate', '');
    const numeric = new Set(['Pending', 'Waiting', 'Blocked', 'Running', 'Failed', 'Succeeded', 'Cancelled']);
    const wide = new Set(['Waiting', 'Blocked', 'Succeeded', 'Cancelled', 'Concurrency', 'Rate']); // hidden on a phone
    $('queues').tHead.rows[0].replaceChildren(
      ...head.map((name) =>
        el('th', { class: `${numeric.has(name) ? 'num' : ''} ${wide.has(name) ? 'wide' : ''}` }, name),
      ),
    );
    const rows = queues.map((queue) => {
      const age = queue.oldest_pending_age_seconds;
      const cells = [el('td', {}, el('a', { href: hashFor({ queue: queue.name, state: '', job: '' }) }, queue.name))];
      if (settings) cells.push(el('td', {}, badge(queue.paused ? 'paused' : 'active')));
      cells.push(
        countCell(queue, 'pending'),
        countCell(queue, 'waiting', 'wide'),
        countCell(queue, 'blocked', 'wide'),
        countCell(queue, 'running'),
        countCell(queue, 'failed'),
        countCell(queue, 'succeeded', 'wide'),
        countCell(queue, 'cancelled', 'wide'),
        el('td', {}, age === null || age === undefined ? el('span', { class: 'muted' }, '\u2014') : el('span', { title: `${age} s` }, duration(age))),
      );
      if (settings) {
        cells.push(
          el('td', { class: 'wide' }, limit(queue.concurrency)),
          el('td', { class: 'wide' }, rate(queue.rate)),
          el('td', {}, el('button', {
            type: 'button',
            class: 'small',
            'data-queue': queue.name,
            onclick: (event) => setPaused(event.currentTarget, queue.name, !queue.paused),
          }, queue.paused ? 'Resume' : 'Pause')),
        );
      }
      return el('tr', { 'data-queue': queue.name }, cells);
    });
    $('queues').tBodies[0].replaceChildren(...rows);
    $('queues-empty').hidden = queues.length > 0;
    $('queue-names').replaceChildren(...queues.map((queue) => el('option', { value: queue.name })));
  }

  async function setPaused(button, name, paused) {
    button.disabled = true;
    try {
      await api('PATCH', `queues/${encodeURIComponent(name)}`, { paused });
      notify(`Queue ${name} ${paused ? 'paused' : 'resumed'}.`, 'action', true);
    } catch (error) {
      actionFailed(error);
    }
    await refresh();
  }

  // --- the job list ----------------------------------------------------------------------

  async function loadJobs(mine) {
    const key = filterKey(view);
    const cursor = cursors[cursors.length - 1];
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const name of FILTERS) if (view[name]) params.set(name, view[name]);
    if (cursor) params.set('cursor', cursor);
    let data;
    try {
      data = await api('GET', `jobs?${params}`);
    } catch (error) {
      if (error.status === 422 && mine === session) renderJobs([], null); // a bad filter: say so, show none
      throw error;
    }
    if (mine !== session || key !== filterKey(view) || cursor !== cursors[cursors.length - 1]) return;
    renderJobs(data.jobs, data.next_cursor);
    await countParents(data.jobs, mine);
  }

  function renderJobs(jobs, next) {
    nextCursor = next;
    const rows = jobs.map((job) => {
      const hint = waitingHint(job.waiting_for) || blockedHint(job);
      const row = el('tr', { 'data-id': job.id, class: job.id === view.job ? 'selected' : '' },
        el('td', {}, badge(job.state)),
        el('td', { class: 'task', title: job.task }, el('a', { href: hashFor({ job: job.id }) }, job.task),
          hint ? el('span', { class: 'hint muted' }, ' \u00b7 ', hint) : null),
        el('td', { class: 'wide' }, job.queue),
        el('td', { class: 'num wide' }, `${job.attempts}/${job.max_attempts}`),
        el('td', {}, when(job.created_at)),
        el('td', { class: 'wide mono', title: job.id }, `\u2026${job.id.slice(-12)}`),
      );
      row.addEventListener('click', (event) => {
        if (event.target.closest('a')) return;
        location.hash = hashFor({ job: job.id });
      });
      return row;
    });
    $('jobs').tBodies[0].replaceChildren(...rows);
    $('jobs-empty').hidden = jobs.length > 0;
    $('newer').disabled = cursors.length <= 1;
    $('older').disabled = !nextCursor;
    $('page').textContent = `Page ${cursors.length}`;
  }

  // --- one job ----------------------------------------------------------------------------

  function showDetail() {
    const open = Boolean(view.job);
    $('detail').hidden = !open;
    document.querySelector('.split').classList.toggle('with-detail', open);
    for (const row of $('jobs').tBodies[0].rows) row.classList.toggle('selected', row.dataset.id === view.job);
    if (!open) $('detail-body').replaceChildren();
    else if ($('detail').dataset.id !== view.job) {
      $('detail-title').textContent = 'Job';
      $('detail-body').replaceChildren(el('p', { class: 'muted' }, 'Loading\u2026'));
    }
    $('detail').dataset.id = view.job;
  }

  async function loadDetail(mine) {
    const id = view.job;
    if (!id) return;
    let job;
    try {
      job = (await api('GET', `jobs/${encodeURIComponent(id)}`)).job;
    } catch (error) {
      if ((error.status === 404 || error.status === 422) && mine === session && id === view.job) {
        $('detail-title').textContent = 'Job';
        $('detail-body').replaceChildren(el('p', { class: 'muted' }, error.message));
        return;
      }
      throw error;
    }
    if (mine !== session || id !== view.job) return;
    const linked = [...(job.depends_on || []), ...(job.children || [])];
    const known = linked.length ? await lookUp(linked) : new Map();
    if (mine !== session || id !== view.job) return;
    renderDetail(job, known);
  }

  function renderDetail(job, known) {
    $('detail-title').replaceChildren(job.task, ' ', badge(job.state));
    const retry = el('button', { type: 'button', id: 'retry', disabled: !['failed', 'cancelled'].includes(job.state) }, 'Retry');
    // A running job can only be asked to stop: it does at its next step (or await).
    const running = job.state === 'running';
    const asked = running && job.cancel_requested === true;
    const cancel = el('button', {
      type: 'button',
      id: 'cancel',
      class: 'danger',
      disabled: !CANCELLABLE.includes(job.state) || asked,
      title: running ? 'Ask the running job to stop: it ends cancelled at its next step' : null,
    }, asked ? 'Asked to stop' : running ? 'Ask to stop' : 'Cancel');
    retry.addEventListener('click', () => act(retry, job, 'retry', () => 'is pending again'));
    cancel.addEventListener('click', () => act(cancel, job, 'cancel',
      (answer) => (answer && answer.job && answer.job.state === 'running' ? 'was asked to stop' : 'is cancelled')));

    const fields = [
      ['Id', el('span', { class: 'mono' }, job.id)],
      ['Queue', job.queue],
      ['Attempts', `${job.attempts} of ${job.max_attempts}`],
      ['Priority', String(job.priority)],
      ['Timeout', job.timeout_seconds === undefined ? null : job.timeout_seconds === null ? '30 s, or the drain\'s budget if less' : `${job.timeout_seconds} s`],
      ['Created', when(job.created_at)],
      ['Run at', when(job.run_at)],
      ['Started', when(job.started_at)],
      ['Finished', when(job.finished_at)],
      ['Waiting for', job.state === 'blocked' && Array.isArray(job.depends_on)
        ? el('span', { class: 'reason' }, waitingOn(job.depends_on, known))
        : waitingFor(job.waiting_for)],
      ['Cancel', !job.cancel_requested ? null : el('span', { class: 'cancel-requested' },
        running ? 'asked for: it stops at its next step' : 'asked for while it ran')],
      ['Idempotency key', job.idempotency_key || null],
    ].filter(([, value]) => value !== null);

    const errors = Array.isArray(job.errors) ? job.errors : job.error ? [job.error] : [];
    const parts = [
      el('div', { class: 'actions' }, retry, cancel),
      el('dl', { class: 'fields' }, fields.map(([name, value]) => [el('dt', {}, name), el('dd', {}, value)])),
    ];
    if (Array.isArray(job.depends_on) && job.depends_on.length) {
      parts.push(el('h3', {}, `Parents (${job.depends_on.length.toLocaleString('en')})`),
        relatedList('parents', job.depends_on, job.depends_on.length, known));
    }
    if (Array.isArray(job.children) && job.children_count) {
      parts.push(el('h3', {}, `Children (${job.children_count.toLocaleString('en')})`),
        relatedList('children', job.children, job.children_count, known));
    }
    if (job.progress) parts.push(el('h3', {}, 'Progress'), progressView(job.progress));
    if (Array.isArray(job.steps)) {
      parts.push(el('h3', {}, `Steps (${job.steps.length})`));
      // The latest ones: a loop of steps may leave thousands.
      const shown = job.steps.slice(-MAX_STEPS_SHOWN);
      if (shown.length < job.steps.length) {
        parts.push(el('p', { class: 'muted' }, `The last ${shown.length}; ${job.steps.length - shown.length} earlier not shown.`));
      }
      parts.push(shown.length
        ? el('ol', { class: 'steps', start: String(job.steps.length - shown.length + 1) }, shown.map(stepView))
        : el('p', { class: 'muted' }, 'None yet.'));
    }
    parts.push(el('h3', {}, 'Payload'), pretty(job.payload));
    if (job.state === 'succeeded' || (job.result !== null && job.result !== undefined)) {
      parts.push(el('h3', {}, 'Result'), pretty(job.result));
    }
    parts.push(el('h3', {}, errors.length ? `Errors (${errors.length})` : 'Errors'));
    if (!errors.length) parts.push(el('p', { class: 'muted' }, 'None.'));
    else {
      parts.push(el('ol', { class: 'errors' }, errors.slice().reverse().map((error) => el('li', {},
        el('div', {}, `Attempt ${error.attempt}`, error.at ? [' \u00b7 ', when(error.at)] : null,
          error.counted === false ? ' \u00b7 not counted: it ran beside other jobs, and runs alone next' : null),
        el('div', {}, el('span', { class: 'error-type' }, error.type), ': ', error.message),
        error.type === 'ParentFailed' && typeof error.parent === 'string'
          ? el('div', { class: 'parent-failed' }, 'The parent: ', jobLink(error.parent, { class: 'mono parent-link' }))
          : null,
        error.traceback ? el('details', {}, el('summary', {}, 'Traceback'), el('pre', { class: 'traceback' }, error.traceback)) : null,
      ))));
    }
    // Keep open tracebacks open across refreshes.
    const opened = new Set([...$('detail-body').querySelectorAll('details')].map((d, i) => (d.open ? i : -1)));
    $('detail-body').replaceChildren(...parts);
    [...$('detail-body').querySelectorAll('details')].forEach((d, i) => {
      if (opened.has(i)) d.open = true;
    });
  }

  // outcome(answer) says what became of the job, from the API's answer.
  async function act(button, job, verb, outcome) {
    button.disabled = true;
    try {
      const answer = await api('POST', `jobs/${encodeURIComponent(job.id)}/${verb}`);
      notify(`Job ${job.task} (\u2026${job.id.slice(-12)}) ${outcome(answer)}.`, 'action', true);
    } catch (error) {
      actionFailed(error);
    }
    await refresh();
  }

  function actionFailed(error) {
    if (error.status === 401) signOut(`The API refused the token (${error.message}). Enter it again.`);
    else notify(error.message, 'action');
  }

  // --- notices ----------------------------------------------------------------------------

  let noticeSource = '';
  let noticeTimer = 0;

  function notify(message, source, ok = false) {
    const notice = $('notice');
    notice.textContent = message;
    notice.classList.toggle('ok', ok);
    notice.hidden = false;
    noticeSource = source;
    clearTimeout(noticeTimer);
    if (ok) noticeTimer = setTimeout(() => clearNotice(source), 6000);
  }

  function clearNotice(source) {
    if (source && source !== noticeSource) return;
    $('notice').hidden = true;
    noticeSource = '';
  }

  // --- signing in and out -----------------------------------------------------------------

  function showSignin() {
    $('app-view').hidden = true;
    $('signin-view').hidden = false;
    $('signout').hidden = true;
    $('refresh').hidden = true;
    $('updated').textContent = '';
    $('token').focus();
  }

  function showApp() {
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    $('signout').hidden = false;
    $('refresh').hidden = false;
    syncForm();
    showDetail();
    refresh();
  }

  function signOut(message) {
    session += 1;
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(timer);
    timer = 0;
    // Forget what was shown: another person may sign in next.
    $('queues').tBodies[0].replaceChildren();
    $('jobs').tBodies[0].replaceChildren();
    $('detail-body').replaceChildren();
    $('detail').dataset.id = '';
    settings = null;
    parentCounts.clear();
    if (message) notify(message, 'auth');
    else clearNotice();
    showSignin();
  }

  function start() {
    $('signin').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('token');
      session += 1;
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      input.value = '';
      clearNotice();
      showApp();
    });
    $('signout').addEventListener('click', () => {
      signOut('');
      notify('Signed out: this tab no longer holds the token.', 'auth', true);
    });
    $('refresh').addEventListener('click', () => refresh());
    $('filters').addEventListener('submit', (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const changes = {};
      for (const key of FILTERS) changes[key] = form.elements[key].value.trim();
      location.hash = hashFor(changes);
    });
    $('filters').addEventListener('reset', (event) => {
      event.preventDefault();
      location.hash = hashFor({ state: '', queue: '', task: '' });
    });
    $('older').addEventListener('click', () => {
      if (!nextCursor) return;
      cursors.push(nextCursor);
      refresh();
    });
    $('newer').addEventListener('click', () => {
      if (cursors.length <= 1) return;
      cursors.pop();
      refresh();
    });
    $('detail-close').addEventListener('click', (event) => {
      event.preventDefault();
      location.hash = hashFor({ job: '' });
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && view.job && !event.target.closest('input, select')) {
        location.hash = hashFor({ job: '' });
      }
    });
    window.addEventListener('hashchange', onHashChange);
    if (signedIn()) showApp();
    else showSignin();
  }

  start();
})();
