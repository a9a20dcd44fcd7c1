/* patrolkg query page: the editor, the example questions, and the result views.
 *
 * Plain JavaScript, no dependencies, no build step. The page works without it (the
 * form posts to /sparql); with it, results are shown in the page. It talks to the
 * SPARQL endpoint like any client: POST the query, read the result by its media type.
 */
(function () {
  "use strict";

  var configElement = document.getElementById("ui-config");
  if (!configElement) {
    return; // only the query page has work for this script
  }
  var config = JSON.parse(configElement.textContent);

  var form = document.getElementById("query-form");
  var editor = document.getElementById("query");
  var gutter = document.getElementById("gutter");
  var statusLine = document.getElementById("status");
  var errorBox = document.getElementById("error");
  var truncatedBox = document.getElementById("truncated");
  var downloads = document.getElementById("downloads");
  var resultBody = document.getElementById("result-body");

  var RDF_STRING = "http://www.w3.org/2001/XMLSchema#string";
  var RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";
  var MAX_SHOWN_ROWS = 5000; // the table stops here; downloads have every row
  var TABLE_FORMATS = [["json", "JSON", "json"], ["xml", "XML", "srx"], ["csv", "CSV", "csv"], ["tsv", "TSV", "tsv"]];
  var GRAPH_FORMATS = [["turtle", "Turtle", "ttl"], ["ntriples", "N-Triples", "nt"], ["jsonld", "JSON-LD", "jsonld"], ["rdfxml", "RDF/XML", "rdf"]];

  // Longest namespace first, so that pkid: wins over a shorter prefix of it.
  var prefixes = Object.keys(config.prefixes)
    .map(function (name) { return [name, config.prefixes[name]]; })
    .sort(function (a, b) { return b[1].length - a[1].length; });

  var examples = {};
  config.examples.forEach(function (example) { examples[example.id] = example; });

  var running = null; // the AbortController of the query in flight

  // ------------------------------------------------------------ small helpers

  function el(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") {
        node.textContent = attributes[key];
      } else if (key === "className") {
        node.className = attributes[key];
      } else {
        node.setAttribute(key, attributes[key]);
      }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function compact(iri) {
    for (var i = 0; i < prefixes.length; i++) {
      var namespace = prefixes[i][1];
      if (iri.length > namespace.length && iri.indexOf(namespace) === 0) {
        var local = iri.slice(namespace.length);
        if (/^[^\s<>"{}|^`\\]+$/.test(local)) {
          return prefixes[i][0] + ":" + local;
        }
      }
    }
    return "<" + iri + ">";
  }

  /* The local page of an IRI this server describes, the IRI itself for other web IRIs. */
  function hrefFor(iri) {
    for (var i = 0; i < config.links.length; i++) {
      var prefix = config.links[i][0], rest = iri.slice(prefix.length);
      var under = prefix.charAt(prefix.length - 1) === "/" ? rest.length > 0 : rest === "" || rest.charAt(0) === "#";
      if (iri.indexOf(prefix) === 0 && under) {
        return config.links[i][1] + rest;
      }
    }
    return /^https?:\/\//i.test(iri) ? iri : null;
  }

  /* An IRI as segments that do not wrap, with a line break allowed after each "/" and
   * "#" (<wbr>): a long IRI wraps between its segments, never at a hyphen inside one. */
  function breakable(text) {
    var parts = [];
    text.split(/(?<=[\/#])/).forEach(function (part, index) {
      if (index) {
        parts.push(el("wbr"));
      }
      parts.push(el("span", { className: "segment", text: part }));
    });
    return parts;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // ------------------------------------------------------------ terms

  function renderTerm(term) {
    if (!term) {
      return el("span", { className: "unbound", title: "unbound" });
    }
    if (term.type === "uri") {
      var href = hrefFor(term.value);
      var link = el(href ? "a" : "span", { className: "iri", title: term.value }, breakable(compact(term.value)));
      if (!href) {
        return link;
      }
      link.setAttribute("href", href);
      if (href === term.value) {
        link.className += " external";
        link.setAttribute("rel", "noopener noreferrer");
        link.setAttribute("target", "_blank");
      }
      return link;
    }
    if (term.type === "bnode") {
      return el("span", { className: "bnode", text: "_:" + term.value });
    }
    if (term.type === "triple") {
      var value = term.value;
      return el("span", { className: "quoted-triple" }, [
        "<< ", renderTerm(value.subject), " ", renderTerm(value.predicate), " ", renderTerm(value.object), " >>",
      ]);
    }
    var literal = el("span", { className: "literal" }, [el("span", { className: "lexical", text: term.value })]);
    var language = term["xml:lang"];
    if (language) {
      literal.appendChild(el("span", { className: "lang", text: "@" + language }));
    } else if (term.datatype && term.datatype !== RDF_STRING && term.datatype !== RDF_LANGSTRING) {
      literal.appendChild(el("span", { className: "datatype", title: term.datatype, text: "^^" + compact(term.datatype) }));
    }
    return literal;
  }

  // ------------------------------------------------------------ N-Triples

  function unescapeNt(text) {
    return text.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[tbnrf"'\\])/g, function (_, code) {
      if (code[0] === "u" || code[0] === "U") {
        return String.fromCodePoint(parseInt(code.slice(1), 16));
      }
      return { t: "\t", b: "\b", n: "\n", r: "\r", f: "\f", '"': '"', "'": "'", "\\": "\\" }[code];
    });
  }

  /* Parse N-Triples (with RDF 1.2 quoted triples) into terms shaped like SPARQL JSON's. */
  function parseNTriples(text) {
    var triples = [];
    text.split(/\r?\n/).forEach(function (line, index) {
      var state = { text: line, at: 0, line: index + 1 };
      skipSpace(state);
      if (state.at >= line.length || line[state.at] === "#") {
        return;
      }
      var subject = readTerm(state), predicate = readTerm(state), object = readTerm(state);
      skipSpace(state);
      if (line[state.at] !== ".") {
        throw new Error("N-Triples line " + state.line + ": expected '.'");
      }
      triples.push({ subject: subject, predicate: predicate, object: object });
    });
    return triples;
  }

  function skipSpace(state) {
    while (state.at < state.text.length && /[ \t]/.test(state.text[state.at])) {
      state.at++;
    }
  }

  function readTerm(state) {
    skipSpace(state);
    var text = state.text, start = state.at, end;
    if (text.slice(start, start + 2) === "<<") {
      state.at += 2;
      var subject = readTerm(state), predicate = readTerm(state), object = readTerm(state);
      skipSpace(state);
      if (text.slice(state.at, state.at + 2) !== ">>") {
        throw new Error("N-Triples line " + state.line + ": expected '>>'");
      }
      state.at += 2;
      return { type: "triple", value: { subject: subject, predicate: predicate, object: object } };
    }
    if (text[start] === "<") {
      end = text.indexOf(">", start);
      if (end < 0) {
        throw new Error("N-Triples line " + state.line + ": unterminated IRI");
      }
      state.at = end + 1;
      return { type: "uri", value: unescapeNt(text.slice(start + 1, end)) };
    }
    if (text.slice(start, start + 2) === "_:") {
      end = start + 2;
      while (end < text.length && !/[\s]/.test(text[end]) && !(text[end] === "." && /[\s]|$/.test(text[end + 1] || ""))) {
        end++;
      }
      state.at = end;
      return { type: "bnode", value: text.slice(start + 2, end) };
    }
    if (text[start] === '"') {
      end = start + 1;
      while (end < text.length && text[end] !== '"') {
        end += text[end] === "\\" ? 2 : 1;
      }
      if (end >= text.length) {
        throw new Error("N-Triples line " + state.line + ": unterminated literal");
      }
      var term = { type: "literal", value: unescapeNt(text.slice(start + 1, end)) };
      state.at = end + 1;
      if (text[state.at] === "@") {
        var language = /^@([A-Za-z]+(?:-[A-Za-z0-9]+)*(?:--[a-z]+)?)/.exec(text.slice(state.at));
        term["xml:lang"] = language ? language[1] : "";
        state.at += language ? language[0].length : 1;
      } else if (text.slice(state.at, state.at + 2) === "^^") {
        state.at += 2;
        term.datatype = readTerm(state).value;
      }
      return term;
    }
    throw new Error("N-Triples line " + state.line + ": unexpected " + JSON.stringify(text.slice(start, start + 10)));
  }

  // ------------------------------------------------------------ result views

  function table(headings, rows) {
    var head = el("tr", {}, [el("th", { className: "row-number", scope: "col", text: "#" })].concat(
      headings.map(function (h) { return el("th", { scope: "col", text: h }); })));
    var body = el("tbody");
    rows.slice(0, MAX_SHOWN_ROWS).forEach(function (cells, index) {
      body.appendChild(el("tr", {}, [el("td", { className: "row-number", text: String(index + 1) })].concat(
        cells.map(function (term) { return el("td", {}, [renderTerm(term)]); }))));
    });
    var wrapper = el("div", { className: "table-wrap" }, [el("table", { className: "results" }, [el("thead", {}, [head]), body])]);
    if (rows.length > MAX_SHOWN_ROWS) {
      wrapper.appendChild(el("p", { className: "muted", text: "The table shows the first " + MAX_SHOWN_ROWS + " rows; the downloads have all of them." }));
    }
    return wrapper;
  }

  function showSolutions(json) {
    if (typeof json.boolean === "boolean") {
      resultBody.replaceChildren(el("p", { className: "boolean boolean-" + json.boolean, text: json.boolean ? "yes (true)" : "no (false)" }));
      return "ask";
    }
    var variables = json.head.vars || [];
    var bindings = json.results.bindings || [];
    var rows = bindings.map(function (binding) {
      return variables.map(function (name) { return binding[name]; });
    });
    resultBody.replaceChildren(bindings.length
      ? table(variables.map(function (v) { return "?" + v; }), rows)
      : el("p", { className: "empty", text: "No rows: the query matched nothing." }));
    return "select";
  }

  function showTriples(text) {
    var triples = parseNTriples(text);
    var rows = triples.map(function (t) { return [t.subject, t.predicate, t.object]; });
    resultBody.replaceChildren(triples.length
      ? table(["subject", "predicate", "object"], rows)
      : el("p", { className: "empty", text: "No triples: the query constructed nothing." }));
    return { kind: "graph", count: triples.length };
  }

  function showDownloads(kind, query) {
    var formats = kind === "graph" ? GRAPH_FORMATS : TABLE_FORMATS;
    var links = formats.map(function (format) {
      var href = config.endpoint + "?query=" + encodeURIComponent(query) + "&format=" + format[0];
      return el("a", { className: "download", href: href, download: "result." + format[2], "data-format": format[0], text: format[1] });
    });
    downloads.replaceChildren.apply(downloads, [el("span", { text: "Download:" })].concat(links));
    downloads.hidden = false;
  }

  // ------------------------------------------------------------ errors

  function title(code) {
    var text = String(code || "error").replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function offsetOf(text, line, column) {
    var lines = text.split("\n"), offset = 0;
    for (var i = 0; i < line - 1 && i < lines.length; i++) {
      offset += lines[i].length + 1;
    }
    return Math.min(offset + Math.max(column - 1, 0), text.length);
  }

  function showError(error, query) {
    var children = [
      el("p", { className: "error-title" }, [
        title(error.code),
        el("span", { className: "error-code", text: [error.code, error.status].filter(Boolean).join(" · ") }),
      ]),
      el("p", { className: "error-message", text: error.message || "The service refused the query." }),
    ];
    if (error.line) {
      var lineText = query.split("\n")[error.line - 1];
      var where = el("p", { className: "error-where" }, [
        "Line " + error.line + (error.column ? ", column " + error.column : ""),
      ]);
      var jump = el("button", { type: "button", className: "link-button", text: "Show in editor" });
      jump.addEventListener("click", function () {
        var at = offsetOf(editor.value, error.line, error.column || 1);
        editor.focus();
        editor.setSelectionRange(at, Math.min(at + 1, editor.value.length));
      });
      where.appendChild(jump);
      children.push(where);
      if (lineText !== undefined) {
        var caret = error.column ? "\n" + " ".repeat(Math.max(error.column - 1, 0)) + "^" : "";
        children.push(el("pre", { className: "error-context", text: lineText + caret }));
      }
    }
    if (error.hint) {
      children.push(el("p", { className: "error-hint" }, [el("strong", { text: "Hint: " }), error.hint]));
    }
    errorBox.replaceChildren.apply(errorBox, children);
    errorBox.hidden = false;
  }

  async function readError(response) {
    var text = await response.text();
    try {
      var body = JSON.parse(text);
      if (body && body.error) {
        return body.error;
      }
    } catch (ignored) { /* not JSON: show the text */ }
    return { status: response.status, code: "http_" + response.status, message: text.trim() || response.statusText };
  }

  // ------------------------------------------------------------ running

  function resetResult() {
    errorBox.hidden = true;
    truncatedBox.hidden = true;
    downloads.hidden = true;
  }

  async function run() {
    var query = editor.value;
    if (running) {
      running.abort();
    }
    var controller = new AbortController();
    running = controller;
    resetResult();
    statusLine.textContent = "Running…";
    statusLine.className = "status busy";
    resultBody.setAttribute("aria-busy", "true");
    var started = performance.now();
    try {
      var response = await fetch(config.endpoint, {
        method: "POST",
        headers: {
          "Accept": "application/sparql-results+json, application/n-triples;q=0.9, */*;q=0.1",
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ query: query }).toString(),
        signal: controller.signal,
      });
      if (!response.ok) {
        showError(await readError(response), query);
        resultBody.replaceChildren();
        statusLine.textContent = "Failed (" + response.status + ")";
        statusLine.className = "status failed";
        return;
      }
      var type = (response.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
      var text = await response.text();
      var ms = Math.round(performance.now() - started) + " ms";
      var kind, summary;
      if (type === "application/sparql-results+json") {
        var json = JSON.parse(text);
        kind = showSolutions(json);
        summary = kind === "ask" ? "ASK answered" : plural(json.results.bindings.length, "row", "rows");
      } else if (type === "application/n-triples") {
        var shown = showTriples(text);
        kind = shown.kind;
        summary = plural(shown.count, "triple", "triples");
      } else {
        kind = /turtle|rdf|ld\+json/.test(type) ? "graph" : "select";
        resultBody.replaceChildren(el("pre", { className: "raw", text: text }));
        summary = type || "result";
      }
      statusLine.textContent = summary + " in " + ms;
      statusLine.className = "status done";
      var truncated = response.headers.get("Patrolkg-Truncated");
      if (truncated !== null) {
        truncatedBox.replaceChildren(
          el("strong", { text: "Truncated. " }),
          "The service stopped at its row limit, so this result is incomplete (Patrolkg-Truncated: " + truncated + "). " +
            "Add a LIMIT or narrow the query; an administrator can raise PATROLKG_MAX_ROWS.");
        truncatedBox.hidden = false;
        statusLine.textContent += " (truncated)";
      }
      showDownloads(kind, query);
    } catch (error) {
      if (error.name === "AbortError") {
        return; // a newer run took over
      }
      showError({ code: "client_error", message: String(error.message || error), hint: "Is the patrolkg server still running?" }, query);
      statusLine.textContent = "Failed";
      statusLine.className = "status failed";
    } finally {
      if (running === controller) {
        running = null;
        resultBody.removeAttribute("aria-busy");
      }
    }
  }

  // ------------------------------------------------------------ editor

  function updateGutter() {
    var count = editor.value.split("\n").length;
    var numbers = [];
    for (var i = 1; i <= count; i++) {
      numbers.push(i);
    }
    gutter.textContent = numbers.join("\n");
    gutter.scrollTop = editor.scrollTop;
  }

  function remember(params) {
    var search = new URLSearchParams(params).toString();
    if (search.length < 4000) {
      history.replaceState(null, "", location.pathname + "?" + search);
    }
  }

  function markExample(id) {
    document.querySelectorAll("button.example").forEach(function (button) {
      var active = button.getAttribute("data-example") === id;
      button.classList.toggle("active", active);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    });
  }

  function loadExample(id) {
    var example = examples[id];
    if (!example) {
      return;
    }
    editor.value = example.text;
    editor.scrollTop = 0;
    updateGutter();
    markExample(id);
    remember({ example: id });
    var box = form.getBoundingClientRect();
    if (box.bottom < 0 || box.top > window.innerHeight) {
      form.scrollIntoView({ block: "start" }); // on a narrow screen the editor is above the list
    }
    run();
  }

  editor.addEventListener("input", function () {
    updateGutter();
    markExample(null);
  });
  editor.addEventListener("scroll", function () { gutter.scrollTop = editor.scrollTop; });
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var active = document.querySelector("button.example.active");
    var id = active && active.getAttribute("data-example");
    remember(id && examples[id].text === editor.value ? { example: id } : { query: editor.value });
    run();
  });
  document.querySelectorAll("button.example").forEach(function (button) {
    button.addEventListener("click", function () { loadExample(button.getAttribute("data-example")); });
  });

  updateGutter();
  var params = new URLSearchParams(location.search);
  if (params.has("example") && examples[params.get("example")]) {
    loadExample(params.get("example"));
  } else if (params.has("query")) {
    run();
  }
})();
