import { describe, expect, it } from 'vitest';
import { DockerfileError, finalImageSteps, historyKeyword, parseDockerfile } from './dockerfile.js';

const steps = (text: string): string => finalImageSteps(parseDockerfile(text)).steps.map((s) => s.keyword).join(' ');

describe('Dockerfile: the steps its image records', () => {
  it('reads the task’s reference Dockerfile: every instruction after FROM, continuation lines joined', () => {
    const df = parseDockerfile(`FROM deploylab/app-base:exam
LABEL org.opencontainers.image.title="notes-api" \\
      org.opencontainers.image.version="1.0"
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY app/ /app/
USER app
EXPOSE 8000
CMD ["python3", "-m", "uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
`);
    expect(finalImageSteps(df)).toMatchObject({ root: 'deploylab/app-base:exam' });
    expect(steps(`FROM x\nLABEL a=b \\\n  c=d\nRUN true`)).toBe('LABEL RUN');
    expect(df.stages[0]!.instructions.map((i) => i.keyword)).toEqual(['LABEL', 'RUN', 'WORKDIR', 'COPY', 'USER', 'EXPOSE', 'CMD']);
    expect(df.stages[0]!.instructions[0]!.args).toBe('org.opencontainers.image.title="notes-api"       org.opencontainers.image.version="1.0"');
  });

  it('multi-stage: the final stage, after the stages it is built FROM; not the stages it only copies from', () => {
    const text = `ARG BASE=deploylab/app-base:exam
FROM \${BASE} AS build
COPY app/ /src/
RUN python3 -m compileall -q /src
FROM build AS tuned
ENV X=1
FROM \${BASE}
# comment
ARG APP_UID=10001
COPY --from=build /src /srv/notes
USER \${APP_UID}
CMD ["main:app"]`;
    expect(finalImageSteps(parseDockerfile(text))).toMatchObject({ root: 'deploylab/app-base:exam' });
    expect(steps(text)).toBe('ARG COPY USER CMD');
    expect(steps(text.replace('FROM ${BASE}\n# comment', 'FROM tuned'))).toBe('COPY RUN ENV ARG COPY USER CMD');
  });

  it('comments inside continuations, the escape directive, heredocs, lower-case keywords', () => {
    expect(steps('FROM x\nRUN a \\\n# note\n  && b\ncopy . /app')).toBe('RUN COPY');
    expect(steps('# escape=`\nFROM x\nRUN a `\n  b\nUSER 1')).toBe('RUN USER');
    expect(steps('FROM x\nRUN <<EOF\nCOPY not-an-instruction\nEOF\nCMD ["x"]')).toBe('RUN CMD');
  });

  it('refuses what is not a Dockerfile', () => {
    expect(() => parseDockerfile('# only a comment\n')).toThrow(DockerfileError);
    expect(() => parseDockerfile('COPY . /\nFROM x')).toThrow(/COPY before the first FROM/);
    expect(() => parseDockerfile('FROM x\nRUN <<EOF\nnever closed')).toThrow(/heredoc EOF is never closed/);
  });
});

describe('Docker history entries', () => {
  // As Docker 20.10 in the seat daemon writes them (docker history --no-trunc).
  it.each([
    ['/bin/sh -c #(nop)  CMD ["python3" "-m" "uvicorn" "main:app"]', '', 'CMD'],
    ['/bin/sh -c #(nop) COPY dir:daaba0e78dac1d20f8a7654ea14c6fd6824d48b436c64d4acf01fddf5ef28dd5 in /app/ ', '', 'COPY'],
    ['/bin/sh -c #(nop) WORKDIR /app', '', 'WORKDIR'],
    ['/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "python3" "-c" "1"] "3s" "0s" "0s" \'\\x00\'}', '', 'HEALTHCHECK'],
    ['/bin/sh -c useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app', '', 'RUN'],
    ['|1 APP_UID=10001 /bin/sh -c useradd --uid ${APP_UID} --no-create-home x', '', 'RUN'],
    ['true', '', 'RUN'],
    ['EXPOSE map[8000/tcp:{}]', 'buildkit.dockerfile.v0', 'EXPOSE'],
    ['RUN |1 APP_UID=10001 /bin/sh -c useradd x # buildkit', 'buildkit.dockerfile.v0', 'RUN'],
    ['COPY /src /srv/notes # buildkit', 'buildkit.dockerfile.v0', 'COPY'],
    ['ARG APP_UID=10001', 'buildkit.dockerfile.v0', 'ARG'],
    ['', 'Imported from -', null],
  ])('%s → %s', (createdBy, comment, keyword) => {
    expect(historyKeyword({ CreatedBy: createdBy, Comment: comment })).toBe(keyword);
  });
});
