/**
 * `quotaflow recommendations --tenant T [--from T1 --to T2] [--adopt ID | --dismiss ID | --reopen ID] [--json]`:
 * compute a tenant's optimisation recommendations over a range (default: the 7 days before now),
 * store them (table recommendations: an adopted or dismissed one keeps its state), print them ranked
 * by saving with the measured effect of the adopted ones; or change one's state. An ID may be
 * given by a unique prefix of at least 8 characters.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { LoadedConfig } from '../../config/load.ts';
import { parseRfc3339 } from '../../domain/usage-event-validation.ts';
import {
  listRecommendations,
  measureAdopted,
  RECOMMENDATION_KINDS,
  type RecommendationKind,
  type RecommendationState,
  recommend,
  saveRecommendations,
  setRecommendationState,
  subjectLabel,
} from '../../processors/recommendations/index.ts';
import type { ClickHouseClient } from '../../storage/clickhouse.ts';
import { printTable } from '../output.ts';
import { withStore } from '../pipeline.ts';

const DAY_MS = 86_400_000;

export interface RecommendationsOptions {
  tenant: string;
  /** Epoch ms, UTC, [fromMs, toMs). */
  fromMs: number;
  toMs: number;
  kinds?: RecommendationKind[];
  json?: boolean;
  /** Change the state of this id (or unique prefix) instead of computing. */
  setState?: { id: string; state: RecommendationState };
  nowMs: number;
}

/** The full id for a unique prefix (>= 8 characters) among the tenant's stored recommendations. */
async function resolveId(client: ClickHouseClient, tenant: string, prefix: string): Promise<string> {
  if (prefix.length < 8) throw new InvalidArgumentError(`recommendation id ${prefix}: give at least 8 characters`);
  const ids = (await listRecommendations(client, tenant)).map((r) => r.id).filter((id) => id.startsWith(prefix));
  if (ids.length === 0)
    throw new InvalidArgumentError(`recommendation ${prefix} not found for tenant ${tenant} (run quotaflow recommendations first)`);
  if (ids.length > 1)
    throw new InvalidArgumentError(`recommendation id ${prefix} matches ${ids.length} recommendations: give more characters`);
  return ids[0] as string;
}

const usdCell = (usd: string, priced: boolean) => (priced ? Number(usd).toFixed(2) : 'unpriced');

/** Run the command (see the module doc). Output goes to stdout. */
export async function runRecommendations(loaded: LoadedConfig, o: RecommendationsOptions): Promise<void> {
  const tenant = o.tenant.normalize('NFC');
  await withStore(loaded, async (client) => {
    if (o.setState) {
      const id = await resolveId(client, tenant, o.setState.id);
      const rec = await setRecommendationState(client, tenant, id, o.setState.state, o.nowMs);
      if (o.json) process.stdout.write(`${JSON.stringify(rec, null, 2)}\n`);
      else process.stdout.write(`${rec.id} ${rec.kind} (${subjectLabel(rec.subject)}): ${rec.state}\n`);
      return;
    }
    const recs = await recommend(client, {
      tenant,
      fromMs: o.fromMs,
      toMs: o.toMs,
      prices: loaded.prices,
      candidates: loaded.config.routing.candidates,
      ...(o.kinds ? { kinds: o.kinds } : {}),
    });
    await saveRecommendations(client, recs, o.nowMs);
    const stored = new Map((await listRecommendations(client, tenant, { ids: recs.map((r) => r.id) })).map((s) => [s.id, s.state]));
    const adopted = await measureAdopted(client, tenant, o.fromMs, o.toMs, loaded.prices);
    if (o.json) {
      const window = { from: new Date(o.fromMs).toISOString(), to: new Date(o.toMs).toISOString() };
      const out = { tenant, window, recommendations: recs.map((r) => ({ ...r, state: stored.get(r.id) ?? 'open' })), adopted };
      process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return;
    }
    printTable(
      `Recommendations for ${tenant}, ${new Date(o.fromMs).toISOString()} .. ${new Date(o.toMs).toISOString()} (saving per 30 days; adopt with --adopt ID)`,
      recs.map((r) => ({
        id: r.id.slice(0, 12),
        kind: r.kind,
        about: subjectLabel(r.subject),
        tokens_per_30d: r.estimated_monthly_saving.tokens,
        usd_per_30d: usdCell(r.estimated_monthly_saving.usd, r.estimated_monthly_saving.priced),
        confidence: r.confidence,
        state: stored.get(r.id) ?? 'open',
      })),
    );
    for (const r of recs) process.stdout.write(`\n  ${r.id.slice(0, 12)}  ${r.title}\n    ${r.rationale}\n`);
    printTable(
      'Adopted recommendations: estimated vs measured saving (USD per 30 days) over the range after adoption',
      adopted.map((a) => ({
        id: a.id.slice(0, 12),
        kind: a.kind,
        about: subjectLabel(a.subject),
        adopted_at: a.adopted_at,
        estimated_usd: a.estimated_usd,
        actual_usd: a.actual_usd ?? 'unpriced',
        ratio: a.ratio === null ? '' : a.ratio.toFixed(2),
      })),
    );
  });
}

function time(value: string): number {
  const ms = parseRfc3339(value);
  if (ms === null) throw new InvalidArgumentError(`not an RFC 3339 date-time with a zone: ${value}`);
  return ms;
}

function kindsOption(value: string): RecommendationKind[] {
  const kinds = value.split(',').map((k) => k.trim());
  for (const k of kinds)
    if (!(RECOMMENDATION_KINDS as readonly string[]).includes(k))
      throw new InvalidArgumentError(`unknown kind ${k} (one of ${RECOMMENDATION_KINDS.join(', ')})`);
  return kinds as RecommendationKind[];
}

/** Register `quotaflow recommendations` on the program; `config` loads the config when the command runs. */
export function registerRecommendationsCommand(program: Command, config: () => LoadedConfig): void {
  program
    .command('recommendations')
    .description("compute, store and print a tenant's optimisation recommendations, or adopt/dismiss one (docs/recommendations.md)")
    .requiredOption('--tenant <tenant>', 'tenant')
    .option('--from <time>', 'range start, RFC 3339 with a zone (default: --to minus 7 days)', time)
    .option('--to <time>', 'range end, RFC 3339 with a zone, exclusive (default: now)', time)
    .option('--kinds <list>', `only these kinds, comma-separated (${RECOMMENDATION_KINDS.join(', ')})`, kindsOption)
    .addOption(new Option('--adopt <id>', 'mark this recommendation adopted (id or unique prefix)').conflicts(['dismiss', 'reopen']))
    .addOption(new Option('--dismiss <id>', 'mark this recommendation dismissed').conflicts(['adopt', 'reopen']))
    .addOption(new Option('--reopen <id>', 'mark this recommendation open again').conflicts(['adopt', 'dismiss']))
    .option('--json', 'print JSON instead of tables')
    .action(
      async (o: {
        tenant: string;
        from?: number;
        to?: number;
        kinds?: RecommendationKind[];
        adopt?: string;
        dismiss?: string;
        reopen?: string;
        json?: boolean;
      }) => {
        const nowMs = Date.now();
        const toMs = o.to ?? nowMs;
        const fromMs = o.from ?? toMs - 7 * DAY_MS;
        if (!(toMs > fromMs)) throw new InvalidArgumentError('--to must be after --from');
        const setState =
          o.adopt !== undefined
            ? { id: o.adopt, state: 'adopted' as const }
            : o.dismiss !== undefined
              ? { id: o.dismiss, state: 'dismissed' as const }
              : o.reopen !== undefined
                ? { id: o.reopen, state: 'open' as const }
                : undefined;
        await runRecommendations(config(), {
          tenant: o.tenant,
          fromMs,
          toMs,
          nowMs,
          ...(o.kinds ? { kinds: o.kinds } : {}),
          ...(o.json ? { json: true } : {}),
          ...(setState ? { setState } : {}),
        });
      },
    );
}
