/**
 * Papers drawn from a task bank. A draw is a pure function of the bank and a seed: the same seed
 * gives the same paper, so the examiners (and an appeal) can show how a room's paper came about.
 */
import { createHash, randomInt } from 'node:crypto';
import type { Bank, Paper } from './task-schema.js';

/** Seeds are six-digit numbers: short enough to read out and write on the room's record. */
export const SEED_MAX = 999_999;

export function randomSeed(): number {
  return randomInt(1, SEED_MAX + 1);
}

/** The id a draw's paper gets: the bank's id and the seed, e.g. junior-draw-004217. */
export function drawnPaperId(bankId: string, seed: number): string {
  return `${bankId}-draw-${String(seed).padStart(6, '0')}`;
}

/**
 * Each slot's tasks ordered by sha256(seed, slot, task) and the first `pick` taken, in slot order.
 * Uniform over the slot's subsets, independent between slots, and stable across hosts.
 */
export function drawPaper(bank: Bank, seed: number): Paper {
  const tasks: string[] = [];
  bank.slots.forEach((slot, i) => {
    const key = (t: string): string => createHash('sha256').update(`${seed}\0${i}\0${t}`).digest('hex');
    const ranked = [...slot.from].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    // Shown in the bank's own order, so a paper reads function by function as the bank lists them.
    const chosen = new Set(ranked.slice(0, slot.pick));
    tasks.push(...slot.from.filter((t) => chosen.has(t)));
  });
  const n = String(seed).padStart(6, '0');
  return {
    id: drawnPaperId(bank.id, seed),
    level: bank.level,
    title: { zh: `${bank.title.zh}（抽题 ${n}）`, en: `${bank.title.en} (draw ${n})` },
    durationMinutes: bank.durationMinutes,
    tasks,
    practice: false,
  };
}

/** How many different papers the bank can draw. */
export function drawCount(bank: Bank): number {
  const choose = (n: number, k: number): number => {
    let r = 1;
    for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
    return Math.round(r);
  };
  return bank.slots.reduce((acc, s) => acc * choose(s.from.length, s.pick), 1);
}
