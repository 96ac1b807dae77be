import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTimeLimit } from '../../src/dashboard/dashboard-db.js';
import { html, query } from '../../src/dashboard/html.js';

describe('dashboard html', () => {
  it('escapes every interpolated value, nested templates pass through', () => {
    const name = `<img src=x onerror="alert('x')">&`;
    const out = html`<td title="${name}">${name}${html`<b>${'<i>'}</b>`}</td>`.text;
    assert.equal(out, '<td title="&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;">&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;<b>&lt;i&gt;</b></td>');
  });

  it('builds query strings from user input safely', () => {
    assert.equal(query({ queue: 'a&b=c', status: undefined, before: 5 }), '?queue=a%26b%3Dc&before=5');
    assert.equal(query({}), '');
  });
});

describe('statement time limit', () => {
  it('MariaDB: SET STATEMENT max_statement_time (seconds) FOR any statement', () => {
    assert.equal(withTimeLimit('mariadb', 'SELECT 1', 2000), 'SET STATEMENT max_statement_time = 2.000 FOR SELECT 1');
    assert.equal(withTimeLimit('mariadb', 'UPDATE jobs SET paused = 1', 250), 'SET STATEMENT max_statement_time = 0.250 FOR UPDATE jobs SET paused = 1');
  });

  it('MySQL: the MAX_EXECUTION_TIME hint (ms) right after SELECT; other statements unchanged', () => {
    assert.equal(withTimeLimit('mysql', '\n  SELECT id FROM jobs', 2000), 'SELECT /*+ MAX_EXECUTION_TIME(2000) */ id FROM jobs');
    assert.equal(withTimeLimit('mysql', 'UPDATE jobs SET paused = 1', 2000), 'UPDATE jobs SET paused = 1');
  });
});
