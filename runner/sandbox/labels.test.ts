import { describe, expect, it } from 'vitest';
import { parseSeatPlan } from './driver.js';
import { bridgeName } from './host-firewall.js';
import { COMPONENT_SEAT, LABEL, labelFilters, parseDuration, seatLabels, sessionLabels } from './labels.js';

describe('labels and plans', () => {
  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('30')).toBe(30_000);
    expect(parseDuration('soon')).toBeNull();
    expect(parseDuration('-1h')).toBeNull();
  });

  it('labels name session, seat, task, version and role; filters narrow by them', () => {
    const plan = parseSeatPlan({ session: 's1', seat: 'a', task: 't', workspace: { image: 'x' }, labels: { extra: 'y' } });
    expect(seatLabels(plan, 'workspace')).toEqual({
      extra: 'y',
      'deploylab.session': 's1',
      'deploylab.seat': 'a',
      'deploylab.task': 't',
      'deploylab.version': '0.1.0',
      'deploylab.component': 'seat',
      'deploylab.role': 'workspace',
    });
    expect(labelFilters({ session: 's1' })).toEqual(['deploylab.component=seat', 'deploylab.session=s1']);
  });

  it('plans: defaults filled once, every problem reported with its path', () => {
    const plan = parseSeatPlan({ session: 's1', seat: 'a', task: 't', workspace: { image: 'x' } });
    expect(plan.resources).toEqual({ cpus: 1, memoryMiB: 2048, pids: 1024, diskMiB: 4096 });
    expect(plan.network.egress).toBe('none');
    expect(plan.workspace.workdir).toBe('/workspace');
    let err: unknown;
    try {
      parseSeatPlan({ session: 'S 1', seat: 'a', task: 't', workspace: { image: 'x', bogus: 1 }, gpu: { devices: ['GPU-zz'] }, services: [{ name: 'dind', image: 'y' }] });
    } catch (e) {
      err = e;
    }
    const issues = (err as { details: { issues: { path: string }[] } }).details.issues.map((i) => i.path).sort();
    expect(issues).toEqual(['gpu.devices[0]', 'services[0].name', 'session', 'workspace']);
  });

  it('bridge names fit the 15-character interface limit and differ per session', () => {
    const n1 = bridgeName('a-very-long-session-name-indeed');
    expect(n1.length).toBeLessThanOrEqual(15);
    expect(n1).not.toBe(bridgeName('a-very-long-session-name-indeeD'));
  });

  it('session labels carry no seat label, so destroying one seat leaves the shared network', () => {
    const plan = parseSeatPlan({ session: 's1', seat: 'a', task: 't', workspace: { image: 'x' } });
    const l = sessionLabels(plan, 'network');
    expect(l[LABEL.session]).toBe('s1');
    expect(l[LABEL.seat]).toBeUndefined();
    expect(l[LABEL.component]).toBe(COMPONENT_SEAT);
  });
});
