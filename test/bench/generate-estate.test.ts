/**
 * Smoke test of the bench's estate generator: a small generated estate is a valid estate file whose users
 * all resolve and get routed by the front end. No timings here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { generateEstateYaml } from '../../bench/generate-estate.ts';
import { estateFileSchema } from '../../src/config/estate-schema.ts';
import { toEstate } from '../../src/config/to-estate.ts';
import { indexEstate } from '../../src/core/estate/estate-index.ts';
import { hostOfUrl } from '../../src/core/host.ts';
import { decide } from '../../src/core/routing/decide.ts';

const opts = { sites: 3, serversPerSite: 4, users: 50, seed: 42 };

function load(text: string) {
  const parsed = estateFileSchema.safeParse(parse(text));
  assert.ok(parsed.success, `schema issues: ${JSON.stringify(parsed.error?.issues.slice(0, 5), null, 2)}`);
  return indexEstate(toEstate(parsed.data));
}

describe('bench/generate-estate', () => {
  const text = generateEstateYaml(opts);
  const index = load(text);
  const { estate } = index;

  test('has the requested size', () => {
    assert.equal(estate.sites.length, 3);
    assert.equal(
      estate.sites.reduce((n, s) => n + s.servers.length, 0),
      12,
    );
    assert.equal(estate.users.length, 50);
  });

  test('is deterministic for a seed', () => {
    assert.equal(generateEstateYaml(opts), text);
    assert.notEqual(generateEstateYaml({ ...opts, seed: 43 }), text);
  });

  test("resolves every user's mailbox by address", () => {
    for (const user of estate.users) assert.ok(index.mailbox(user.address), `no mailbox for ${user.address}`);
  });

  test('external URL hosts are namespaces of their server; internal URL hosts are its FQDN', () => {
    for (const site of estate.sites) {
      let external = 0;
      for (const server of site.servers) {
        for (const [p, urls] of Object.entries(server.urls)) {
          if (urls.internal)
            assert.equal(hostOfUrl(urls.internal), server.fqdn, `${server.name} ${p} internal`);
          if (urls.external) {
            external++;
            assert.equal(
              index.namespace(hostOfUrl(urls.external))?.server,
              server.name,
              `${server.name} ${p} external`,
            );
          }
        }
      }
      assert.equal(external > 0, site.internetFacing, `${site.name}: internetFacing vs external URLs`);
    }
    for (const kind of ['primary', 'autodiscover', 'legacy'] as const)
      assert.ok(index.namespaceOfKind(kind), kind);
  });

  test('the front end routes ActiveSync for every user (no refusal)', () => {
    const primary = index.namespaceOfKind('primary');
    const fe = primary && index.server(primary.server);
    assert.ok(primary && fe);
    for (const user of estate.users) {
      const d = decide(
        { server: fe, role: 'cas' },
        {
          protocol: 'activesync',
          mailbox: index.mailbox(user.address),
          client: 'external',
          host: primary.host,
        },
        index,
        estate.policies,
      );
      assert.notEqual(d.kind, 'refuse', `${user.address}: ${JSON.stringify(d.reasons)}`);
    }
  });
});
