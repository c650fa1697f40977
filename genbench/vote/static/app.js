// The preference page: asks for a rater id, then shows pairs until every pair has this rater's vote.
// Keys: ArrowLeft or 1 = left is better, ArrowRight or 2 = right is better.
// One press, one vote: a double-click's second click and a held key's repeats are not votes (each landed on
// the next pair, shown for a moment). A pair whose image does not load is skipped, never voted on. The server
// away (restarted): the page tries again by itself and sends a vote given meanwhile once it is back.
"use strict";

const $ = (id) => document.getElementById(id);
let rater = null;
let current = null;   // {pair_id, left, right}
let busy = false;
const skipped = new Set();   // pairs whose image did not load in this page: asked to be left out

async function getJSON(url, options) {
  let resp;
  try {
    resp = await fetch(url, Object.assign({ cache: "no-store" }, options || {}));
  } catch (e) {   // the server stopped or the network dropped: status 0, retried by the callers below
    return { status: 0, body: { error: "The study server cannot be reached." } };
  }
  let body = {};
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  return { status: resp.status, body };
}

// The server away for a while (restarted, the laptop's network down): the page tries again by itself, waiting
// longer each time, and says so — it stayed on the error until the rater thought to reload. A status of 0 is
// no answer at all; 502-504 a proxy's or the study's "not now".
const RETRY_DELAYS = [1, 2, 4, 8];   // seconds, then 8 s each time
const awayStatus = (status) => status === 0 || status === 502 || status === 503 || status === 504;
let wakeRetry = null;   // a key pressed while waiting: try now rather than at the end of the delay
let session = 0;        // bumped by "Change rater": a retry loop of the rater before stops

async function untilAnswered(request, say, ownRaterOnly) {
  // request() -> {status, body}, tried again while the server is away; say(answer, seconds) tells the rater.
  // ownRaterOnly: null once the rater changed ("Change rater"); a vote is sent whoever rates on in this tab
  const mine = session;
  const gone = () => ownRaterOnly && mine !== session;
  for (let attempt = 0; ; attempt++) {
    const answer = await request();
    if (gone()) return null;
    if (!awayStatus(answer.status)) return answer;
    const wait = RETRY_DELAYS[Math.min(attempt, RETRY_DELAYS.length - 1)];
    if (mine === session) { say(answer, wait); document.body.dataset.retrying = "true"; }
    await new Promise((resolve) => { wakeRetry = resolve; setTimeout(resolve, wait * 1000); });
    wakeRetry = null;
    if (gone()) return null;
  }
}

function stopRetrying() { delete document.body.dataset.retrying; }

// The total counts the pairs this rater can be shown; those left out (an image missing or damaged, or one
// this browser could not show) are said from the first pair on, not only at the end: "0 / 96 pairs done"
// with 95 that could never be shown was a study that could not be finished.
function showProgress(p, leftOut) {
  $("progress").textContent = `${p.done} / ${p.total} pairs done`;
  $("left-out-now").textContent = leftOut
    ? `${leftOut} pair(s) left out: an image is missing or damaged — please tell the study's organiser.`
    : "";
}

async function loadStudy() {
  const got = await untilAnswered(() => getJSON("/api/study"), () => {}, false);   // next() says why
  const body = got.body;
  if (body.title) { $("title").textContent = body.title; document.title = body.title; }
  $("instructions").replaceChildren(...(body.instructions || []).map((t) => {
    const li = document.createElement("li"); li.textContent = t; return li;
  }));
}

function loadImage(img, src) {
  return new Promise((resolve) => {
    img.onload = () => resolve(true);
    img.onerror = () => resolve(false);
    img.src = src;
  });
}

async function next() {
  busy = true;
  $("pair").classList.add("busy");
  const skip = [...skipped].map((pid) => `&skip=${encodeURIComponent(pid)}`).join("");
  let retried = false;
  const got = await untilAnswered(() => getJSON(`/api/next?rater=${encodeURIComponent(rater)}${skip}`),
    (answer, wait) => {
      retried = true;
      $("status").textContent = `${answer.body.error || `server error ${answer.status}`} Trying again in `
        + `${wait} s by itself — your votes so far are saved.`;
    }, true);
  if (got === null) return;   // another rater at this tab meanwhile
  stopRetrying();
  if (retried) $("status").textContent = "";
  const { status, body } = got;
  if (status !== 200) { $("status").textContent = body.error || `server error ${status}`; busy = false; return; }
  showProgress(body.progress, body.finished ? 0 : body.left_out);
  if (body.finished) {
    $("study").hidden = true; $("finished").hidden = false; current = null; busy = false;
    if (body.left_out) {
      $("left-out").textContent = `${body.left_out} pair(s) could not be shown (an image is missing or damaged) — please tell the study's organiser.`;
    }
    document.body.dataset.state = "finished";
    return;
  }
  current = null;   // no vote until both images are on screen
  $("pair").dataset.pairId = body.pair_id;
  const loaded = await Promise.all([loadImage($("left"), body.left), loadImage($("right"), body.right)]);
  if (!loaded.every(Boolean)) {
    skipped.add(body.pair_id);
    $("status").textContent = "A pair whose image could not be loaded was skipped.";
    await next();
    return;
  }
  current = body;
  $("pair").classList.remove("busy");
  document.body.dataset.state = "voting";
  busy = false;
}

// A vote is kept in this tab (sessionStorage: over a reload too) from the press until the server has
// answered it: one given while the server was away is sent once it is back, by itself — it was dropped,
// "nothing was saved", and the rater had to press again (and a press meant as that retry voted on the next
// pair once the first had landed after all). A vote the server refuses is said as not saved, never dropped
// in silence; one it already has (an earlier send whose answer was lost in the stop) counts once.
const PENDING_KEY = "genbench-pending-vote";

function pendingVote() {
  try {
    const v = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    return v && typeof v.rater === "string" && typeof v.pair_id === "string" ? v : null;
  } catch (e) { return null; }
}

function keepPending(v) {
  try {
    if (v) sessionStorage.setItem(PENDING_KEY, JSON.stringify(v)); else sessionStorage.removeItem(PENDING_KEY);
  } catch (e) { /* private mode: kept in this page only */ }
}

async function vote(choice) {
  if (busy || !current) { if (wakeRetry) wakeRetry(); return; }   // waiting for the server: try now
  busy = true;
  $("status").textContent = "";
  await deliver({ rater, pair_id: current.pair_id, choice });
}

async function deliver(sent) {
  keepPending(sent);
  const mine = session;
  let retried = false;
  const got = await untilAnswered(() => getJSON("/api/vote", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(sent),
  }), (answer, wait) => {
    retried = true;
    $("status").textContent = `${answer.body.error || `server error ${answer.status}`} Your vote (${sent.choice}) `
      + `is kept on this page and sent when the server is back — trying again in ${wait} s.`;
  }, false);
  keepPending(null);
  stopRetrying();
  if (mine !== session) return;   // the rater changed meanwhile: their vote went all the same
  if (retried) $("status").textContent = "";
  const { status, body } = got;
  if (status === 201 || status === 409) {   // 409: already counted (e.g. a second tab) — move on
    await next();
    if (status === 409 && body.saved !== sent.choice) {   // this press was not counted: said, not hidden
      $("status").textContent = "That pair already had your vote (from another tab or window): the first one counts.";
    }
    return;
  }
  // refused (a pair the study no longer holds, a malformed vote): not saved, and said so under the pair
  // the server offers now
  await next();
  $("status").textContent = `Your last vote was not saved: ${body.error || `server error ${status}`}.`;
}

// Who is rating: a tab keeps its own login (sessionStorage: kept over a reload, not shared with other tabs;
// localStorage's last login, shared by every tab, made a second rater on a lab machine vote as the first).
// The browser remembers which ids rated in it (localStorage), and a login that may be the wrong person is
// asked, never merged silently: an id new to the study typed where others rated before (the same rater's
// second tab typing "Alice" or "r1" for alice / r01 would count as a second rater; or a second person:
// they say so), and an id with votes from elsewhere (another browser, or someone else who typed it).
const RATERS_KEY = "genbench-raters";

function browserRaters() {
  try {
    const ids = JSON.parse(localStorage.getItem(RATERS_KEY) || "[]");
    return Array.isArray(ids) ? ids.filter((id) => typeof id === "string") : [];
  } catch (e) { return []; }   // private mode, or a value not ours
}

function remember(id) {
  try {
    sessionStorage.setItem("genbench-rater", id);
    const ids = browserRaters().filter((x) => x !== id);
    localStorage.setItem(RATERS_KEY, JSON.stringify([id, ...ids].slice(0, 20)));
  } catch (e) { /* private mode */ }
}

function ask(message, choices) {
  // choices: [[label, action]], the last one focused (Enter presses it): the answer that merges no two
  // people's votes — a merge cannot be undone, a rater split in two can be joined by the organiser
  $("login").hidden = true;
  $("confirm-text").textContent = message;
  $("confirm-choices").replaceChildren(...choices.map(([label, action]) => {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label;
    b.addEventListener("click", action);
    return b;
  }));
  $("confirm").hidden = false;
  document.body.dataset.state = "confirm";
  $("confirm-choices").lastChild.focus();
}

function backToLogin() {
  $("confirm").hidden = true;
  $("login").hidden = false;
  document.body.dataset.state = "login";
  $("rater").focus();
  $("rater").select();
}

let loggingIn = false;   // a login's question to the server is on its way (or waiting for the server)

async function start() {
  const value = $("rater").value.trim();
  $("login-error").textContent = "";
  // the server away: the login is tried again by itself, as a vote is ("Press Enter again in a moment" left
  // the rater to guess when). Enter pressed while it waits tries now, with the id then typed: the wait ends.
  if (loggingIn) { session++; loggingIn = false; stopRetrying(); if (wakeRetry) wakeRetry(); }
  if (!/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/.test(value)) {
    // "letters" read as any letter: "zoë" and "-x" were refused by a message they seemed to meet
    $("login-error").textContent = `"${value}" cannot be a rater id: use up to 64 of a–z A–Z 0–9 _ . @ - `
      + "(no spaces or accents), starting with a letter or a digit — e.g. zoe or r01";
    return;
  }
  let own = null;
  try { own = sessionStorage.getItem("genbench-rater"); } catch (e) { /* private mode */ }
  const known = browserRaters();
  if (value === own || known.includes(value)) { await begin(value); return; }   // this tab's or browser's
  loggingIn = true;
  const mine = session;
  const got = await untilAnswered(() => getJSON(`/api/progress?rater=${encodeURIComponent(value)}`),
    (answer, wait) => {
      $("login-error").textContent = `${answer.body.error || `server error ${answer.status}`} Trying again `
        + `in ${wait} s by itself.`;
    }, true);
  if (got === null || mine !== session) return;   // a later Enter or a rater change took over
  loggingIn = false;
  stopRetrying();
  $("login-error").textContent = "";
  const { status, body } = got;
  if (status !== 200) { $("login-error").textContent = body.error || `server error ${status}`; return; }
  if (body.done > 0) {
    ask(`"${value}" already has ${body.done} of ${body.total} votes, from another browser. Continue only if `
      + `you are ${value}; if not, choose another id — their votes and yours must not be merged.`,
      [[`I am ${value}`, () => begin(value)], ["Choose another id", backToLogin]]);   // Enter: another id
    return;
  }
  if (known.length) {
    const list = known.slice(0, 3).map((id) => `"${id}"`).join(", ");
    ask(`"${value}" is a new rater id, but this browser has rated as ${list}. If you rated here before, `
      + "continue with your id (a second id would count you as a second rater).",
      [...known.slice(0, 3).map((id) => [`I am ${id}`, () => begin(id)]),
       [`I am a new rater: ${value}`, () => begin(value)]]);   // Enter: a rater of their own
    return;
  }
  await begin(value);
}

async function begin(id) {
  rater = id;
  remember(id);
  $("rater").value = id;
  $("who-id").textContent = id;
  $("who").hidden = false;
  $("confirm").hidden = true;
  $("login").hidden = true;
  $("study").hidden = false;
  const waiting = pendingVote();
  if (waiting && waiting.rater === id) {   // given before a reload, its answer never came: send it first
    busy = true;
    current = null;
    await deliver(waiting);
    return;
  }
  await next();
}

document.addEventListener("keydown", (ev) => {
  if (!$("confirm").hidden) return;   // a question on screen: its buttons answer (Enter on the focused one)
  if (!$("login").hidden) {
    if (ev.key === "Enter") { ev.preventDefault(); start(); }
    return;
  }
  if (ev.repeat) { if (["ArrowLeft", "ArrowRight", "1", "2"].includes(ev.key)) ev.preventDefault(); return; }
  if (ev.key === "ArrowLeft" || ev.key === "1") { ev.preventDefault(); vote("left"); }
  else if (ev.key === "ArrowRight" || ev.key === "2") { ev.preventDefault(); vote("right"); }
});
$("start").addEventListener("click", start);

// Another person at this tab: a reload goes on as the rater who logged in, so the page says who that is and
// offers the way back to the login (the votes given stay theirs).
function changeRater() {
  try { sessionStorage.removeItem("genbench-rater"); } catch (e) { /* private mode */ }
  session++;   // the previous rater's wait for a pair ends; a vote they gave is still sent
  if (wakeRetry) wakeRetry();
  stopRetrying();
  rater = null; current = null; busy = false;
  skipped.clear();
  for (const id of ["who", "study", "finished", "confirm"]) $(id).hidden = true;
  $("status").textContent = ""; $("left-out").textContent = "";
  $("login").hidden = false;
  $("rater").value = "";
  document.body.dataset.state = "login";
  $("rater").focus();
}
$("switch").addEventListener("click", changeRater);
// ev.detail: 1 for a click, 2 for a double-click's second one, 0 for Enter / Space on the button
$("pick-left").addEventListener("click", (ev) => { if (ev.detail < 2) vote("left"); });
$("pick-right").addEventListener("click", (ev) => { if (ev.detail < 2) vote("right"); });

// A reload (or a tab the browser discarded while the laptop slept) goes on as the rater this tab logged in
// as, at their next pair: their votes are on the server, their order is fixed by their id. It was sent back
// to the login step, the id filled in, and a rater who did not think to press Enter took it for a lost study.
(function init() {
  loadStudy();
  const fromUrl = new URLSearchParams(location.search).get("rater");
  let saved = null;
  try { saved = sessionStorage.getItem("genbench-rater"); } catch (e) { /* private mode */ }
  $("rater").value = fromUrl || saved || "";
  if (saved && (!fromUrl || fromUrl === saved)) {   // this tab's own login, checked when it was made
    document.body.dataset.state = "resuming";
    begin(saved);
    return;
  }
  document.body.dataset.state = "login";
})();
